"""Tables for kdgen.configrender: Kuscia's agent-side config rendering (spec §7.3).

Each expectation names the Go rule that gives it. The success vectors were also run through
Kuscia's own ``renderConfig``/``QueryByFields`` code (compiled with Go 1.26, outside the
repo) and matched; the error rows are kdgen's deliberate departures, with what Go does noted.
"""

from __future__ import annotations

import json

import pytest

from kdgen.configrender import go_quote_trimmed, render_config_templates
from kdgen.errors import Problem, ValidationError

# --- escaping: strings.Trim(strconv.Quote(v), "\"") ---------------------------------------

QUOTE_CASES = [
    pytest.param("serving-1", "serving-1", id="plain-ascii-unchanged"),
    pytest.param("", "", id="empty"),
    # Quote escapes '"' and '\' with a backslash.
    pytest.param('a"b', 'a\\"b', id="inner-quote"),
    pytest.param("a\\b", "a\\\\b", id="backslash"),
    # A leading '"' becomes '\"'; Trim stops at the backslash, so it survives.
    pytest.param('"hello', '\\"hello', id="leading-quote-kept"),
    # Kuscia's bug: Quote gives "hello\"" and Trim eats both final quotes.
    pytest.param('hello"', "hello\\", id="trailing-quote-bug"),
    pytest.param('"', "\\", id="only-a-quote"),
    pytest.param('""', '\\"\\', id="two-quotes"),
    pytest.param('say "hi"!', 'say \\"hi\\"!', id="quote-not-last-is-fine"),
    # Quote's short escapes for \a \b \f \n \r \t \v.
    pytest.param("a\nb\rc\td", "a\\nb\\rc\\td", id="newline-cr-tab"),
    pytest.param("\a\b\f\v", "\\a\\b\\f\\v", id="bel-bs-ff-vt"),
    # Other runes below U+0020, and DEL, become \xNN (lowercase hex).
    pytest.param("\x00\x01\x1b\x1f", "\\x00\\x01\\x1b\\x1f", id="control-chars"),
    pytest.param("a\x7fb", "a\\x7fb", id="del"),
    # Non-printable runes (unicode.IsPrint false) become \uNNNN or \UNNNNNNNN.
    pytest.param("\x85\xa0\xad", "\\u0085\\u00a0\\u00ad", id="nel-nbsp-soft-hyphen"),
    pytest.param("\u2028\ufeff\ue000", "\\u2028\\ufeff\\ue000", id="line-sep-bom-private-use"),
    pytest.param("\U000e0001\U0010ffff", "\\U000e0001\\U0010ffff", id="astral-non-printable"),
    # Printable runes, non-ASCII included, are kept as they are.
    pytest.param("é 中文 😀", "é 中文 😀", id="printable-non-ascii-kept"),
    # U+1FA77 is Unicode 15.0: Go 1.24 prints it, Python 3.11's tables alone would not.
    pytest.param("\U0001fa77", "\U0001fa77", id="unicode-15-emoji-kept"),
    # A lone surrogate is invalid UTF-8 to Go: each of its three bytes becomes \xNN.
    pytest.param("\ud800", "\\xed\\xa0\\x80", id="lone-surrogate"),
    # Quote does no HTML escaping.
    pytest.param("<a&b>", "<a&b>", id="html-chars-unchanged"),
    pytest.param('{"a":[1,"x"]}', '{\\"a\\":[1,\\"x\\"]}', id="json-object"),
]


@pytest.mark.parametrize(("value", "want"), QUOTE_CASES)
def test_go_quote_trimmed(value: str, want: str) -> None:
    assert go_quote_trimmed(value) == want


# --- the seed AppImage's template ----------------------------------------------------------

SEED_TEMPLATE = """{
  "serving_id": "{{.SERVING_ID}}",
  "input_config": "{{.INPUT_CONFIG}}",
  "cluster_def": "{{.CLUSTER_DEFINE}}",
  "allocated_ports": "{{.ALLOCATED_PORTS}}"
}
"""

CLUSTER_DEFINE = (
    '{"parties":[{"name":"alice","role":"","services":[{"portName":"communication",'
    '"endpoints":["serving-1-communication.alice.svc"]},{"portName":"internal",'
    '"endpoints":["serving-1-internal.alice.svc:22293"]}]},{"name":"bob","role":"",'
    '"services":[{"portName":"communication","endpoints":["serving-1-communication.bob.svc"]},'
    '{"portName":"internal","endpoints":["serving-1-internal.bob.svc:30212"]}]}],'
    '"selfPartyIdx":1,"selfEndpointIdx":0}'
)
ALLOCATED_PORTS = (
    '{"ports":[{"name":"communication","port":22292,"scope":"Cluster","protocol":"HTTP"},'
    '{"name":"internal","port":22293,"scope":"Domain","protocol":"HTTP"}]}'
)
# An inputConfig as a user writes it: pretty-printed, with a tab and a path with a backslash.
INPUT_CONFIG = '{\n  "partyConfigs": {\n\t"bob": {"modelId": "glm-test", "dir": "C:\\\\m"}\n  }\n}'

SEED_VALUES = {
    "SERVING_ID": "serving-1",
    "INPUT_CONFIG": INPUT_CONFIG,
    "CLUSTER_DEFINE": CLUSTER_DEFINE,
    "ALLOCATED_PORTS": ALLOCATED_PORTS,
    "KUSCIA_DOMAIN_ID": "bob",
}


def test_seed_template_renders_valid_json() -> None:
    rendered, warnings = render_config_templates(
        {"serving-config.conf": SEED_TEMPLATE}, SEED_VALUES
    )
    assert warnings == []

    text = rendered["serving-config.conf"]
    # Quote escapes '"' and '\' and turns newline and tab into \n and \t: for values without
    # control characters beyond those, the result is a valid JSON string body.
    assert text.splitlines()[2] == (
        '  "input_config": "{\\n  \\"partyConfigs\\": {\\n\\t\\"bob\\": '
        '{\\"modelId\\": \\"glm-test\\", \\"dir\\": \\"C:\\\\\\\\m\\"}\\n  }\\n}",'
    )
    assert json.loads(text) == {
        "serving_id": "serving-1",
        "input_config": INPUT_CONFIG,
        "cluster_def": CLUSTER_DEFINE,
        "allocated_ports": ALLOCATED_PORTS,
    }
    # text/template writes text between actions verbatim, trailing newline included.
    assert text.endswith("}\n")


# --- rendering, {{.KEY}} and {{{.PATH}}} ---------------------------------------------------

DOC_PORTS = '{"ports":[{"name":"test","port":26409,"scope":"Cluster","protocol":"HTTP"}]}'
NUMBERS = '{"arr":[10,20,30],"big":1e21,"whole":100.0,"tiny":1.5e-7,"flags":[true,false]}'
MARKUP = '{"b":"<a&b>","a":1,"msg":"say \\"hi\\"\\n"}'

RENDER_CASES = [
    # config_render.md: the port is a JSON number, json.Marshal prints it without a fraction.
    pytest.param(
        "listen {{{.ALLOCATED_PORTS.ports[name=test].port}}};",
        {"ALLOCATED_PORTS": DOC_PORTS},
        "listen 26409;",
        id="doc-allocated-port-by-name",
    ),
    # config_render.md: "[.A.B]" is rewritten to "[#A#B]", evaluated from the root, used as
    # the index. selfPartyIdx is 1, so this is bob's first endpoint.
    pytest.param(
        "{{{.CLUSTER_DEFINE.parties[.CLUSTER_DEFINE.selfPartyIdx].services[0].endpoints[0]}}}",
        {"CLUSTER_DEFINE": CLUSTER_DEFINE},
        "serving-1-communication.bob.svc",
        id="doc-own-first-endpoint",
    ),
    # config_render.md: an empty role is a value (only JSON null counts as missing).
    pytest.param(
        "[{{{.CLUSTER_DEFINE.parties[name=alice].role}}}]",
        {"CLUSTER_DEFINE": CLUSTER_DEFINE},
        "[]",
        id="doc-role-by-name-empty-string",
    ),
    # json.Marshal of a map: sorted keys, compact; a different order from the protojson env.
    pytest.param(
        "{{{.ALLOCATED_PORTS}}}",
        {"ALLOCATED_PORTS": DOC_PORTS},
        '{"ports":[{"name":"test","port":26409,"protocol":"HTTP","scope":"Cluster"}]}',
        id="whole-value-resorted",
    ),
    # json.Marshal escapes < > & as \u003c \u003e \u0026.
    pytest.param(
        "{{{.M}}}",
        {"M": MARKUP},
        '{"a":1,"b":"\\u003ca\\u0026b\\u003e","msg":"say \\"hi\\"\\n"}',
        id="html-escaped-object",
    ),
    # A string result is written raw: no quoting, real newline.
    pytest.param("{{{.M.msg}}}", {"M": MARKUP}, 'say "hi"\n', id="string-result-raw"),
    # A value that is not a JSON object or array stays a string, even if it looks numeric.
    pytest.param("{{{.N}}}|{{{.S}}}", {"N": "007", "S": 'a"b'}, '007|a"b', id="non-json-raw"),
    # byIdx: negative indices count from the end.
    pytest.param("{{{.X.arr[-1]}}} {{{.X.arr[-2]}}}", {"X": NUMBERS}, "30 20", id="negative-index"),
    # strconv.Atoi accepts a sign and leading zeros.
    pytest.param("{{{.X.arr[+1]}}} {{{.X.arr[01]}}}", {"X": NUMBERS}, "20 20", id="atoi-index"),
    # A root JSON array is indexable too.
    pytest.param("{{{.A[0]}}}", {"A": "[5,6]"}, "5", id="root-array"),
    # byFilter compares a non-string field as its json.Marshal text.
    pytest.param(
        "{{{.P.ports[port=26409].name}}}", {"P": DOC_PORTS}, "test", id="filter-on-number"
    ),
    # %v of a string is the string: a plain value can index too.
    pytest.param(
        "{{{.CD.parties[.IDX].name}}}",
        {"CD": CLUSTER_DEFINE, "IDX": "0"},
        "alice",
        id="computed-index-from-string",
    ),
    # Go's float encoder: 'e' from 1e21, shortest digits, "e-07" cleaned to "e-7".
    pytest.param(
        "{{{.X.big}}} {{{.X.whole}}} {{{.X.tiny}}} {{{.X.flags}}}",
        {"X": NUMBERS},
        "1e+21 100 1.5e-7 [true,false]",
        id="json-numbers-and-bools",
    ),
    # Both syntaxes in one template; {{.KEY}} is quoted, {{{.KEY}}} is raw.
    pytest.param(
        'q="{{.S}}" r={{{.S}}}', {"S": 'x"y\n'}, 'q="x\\"y\\n" r=x"y\n', id="quoted-vs-raw"
    ),
    # text/template allows space, tab, CR and newline around the field.
    pytest.param("{{ .A }}{{\t.A\n}}{{.A }}", {"A": "v"}, "vvv", id="spaces-in-action"),
    # A Unicode letter is a valid Go field name.
    pytest.param("{{.ÄÖ}}", {"ÄÖ": "u"}, "u", id="unicode-field-name"),
    # The pre-scan matches 2 or 3 closing braces: "{{.A}}}" is {{.A}} and a literal "}".
    pytest.param("{{.A}}}", {"A": "v"}, "v}", id="extra-closing-brace"),
    # "{{{.A}}" opens with three braces, so it is a kuscia call.
    pytest.param("{{{.A}}", {"A": "v"}, "v", id="three-open-two-close"),
    # Text is verbatim: CRLF and single braces stay.
    pytest.param("a {\r\n}} b\r\n", {}, "a {\r\n}} b\r\n", id="literal-text-verbatim"),
]


@pytest.mark.parametrize(("template", "values", "want"), RENDER_CASES)
def test_render(template: str, values: dict[str, str], want: str) -> None:
    assert render_config_templates({"t.conf": template}, values) == ({"t.conf": want}, [])


def test_output_keeps_template_order() -> None:
    rendered, _ = render_config_templates({"b.conf": "{{.A}}", "a.conf": "x"}, {"A": "1"})

    assert list(rendered.items()) == [("b.conf", "1"), ("a.conf", "x")]


# --- problems: kdgen's deliberate departures from the agent --------------------------------

HINT = "set it in the inventory's spec.templateValues"
UNSUPPORTED = "kdgen renders only {{.KEY}}, {{ .KEY }} and {{{.PATH}}}"
EMPTY = "finds no value (the Kuscia agent would render it empty)"
LISTS = '{"arr":[10,20,30],"big":1e21,"L":[{"n":"a"},null,{"n":"b","v":1}]}'


def missing(template: str, key: str, hint: str = HINT) -> str:
    return (
        f'template "{template}": key "{key}" is not defined, rendered as "" as the Kuscia '
        f"agent does ({hint})"
    )


def unsupported(source: str, why: str = "") -> str:
    message = f'template "t.conf": unsupported Go-template construct {source}: {UNSUPPORTED}'
    return f"{message}; {why}" if why else message


PROBLEM_CASES = [
    # Go runs these (or fails on them); kdgen supports only the subset Kuscia's images use.
    pytest.param(
        {"t.conf": "{{if .A}}x{{end}}"},
        {"A": "1"},
        [unsupported('"{{if .A}}"'), unsupported('"{{end}}"')],
        id="if-end",
    ),
    pytest.param(
        {"t.conf": "{{- .A}} {{.A -}}"},
        {"A": "1"},
        [unsupported('"{{- .A}}"'), unsupported('"{{.A -}}"')],
        id="trim-markers",
    ),
    pytest.param(
        {"t.conf": '{{.A | printf "%q"}}{{/* note */}}'},
        {"A": "1"},
        [unsupported('"{{.A | printf \\"%q\\"}}"'), unsupported('"{{/* note */}}"')],
        id="pipeline-and-comment",
    ),
    # Go: function "foo" not defined.
    pytest.param({"t.conf": "{{ foo }}"}, {}, [unsupported('"{{ foo }}"')], id="no-dot"),
    # Go: can't evaluate field b in type string.
    pytest.param(
        {"t.conf": "{{.A.b}}"},
        {"A": '{"b":1}'},
        [unsupported('"{{.A.b}}"', "use {{{.KEY.field}}} to read inside a JSON value")],
        id="field-chain-hint",
    ),
    # Go: unexpected "{" in command (the pre-scan needs "{{{." with no space).
    pytest.param({"t.conf": "{{{ .A }}}"}, {"A": "1"}, [unsupported('"{{{ .A }}"')], id="spaced"),
    # Go: the pre-scan turns the inner part into {{kuscia "A"}}, then "{" + "{{kuscia" fails.
    pytest.param(
        {"t.conf": "{{{{.A}}}}"},
        {"A": "1"},
        [unsupported('"{{{{.A}}}"', "Go reads a '{' before {{{ as an action")],
        id="four-braces",
    ),
    # Go: a parse error, as the path lands inside a Go string literal.
    pytest.param(
        {"t.conf": '{{{.A"b}}}'},
        {"A": "1"},
        [
            unsupported(
                '"{{{.A\\"b}}}"', "a {{{.PATH}}} path cannot contain '\"', '\\' or a line break"
            )
        ],
        id="quote-in-path",
    ),
    pytest.param({"t.conf": "x {{.A"}, {"A": "1"}, [unsupported('"{{.A"')], id="unterminated"),
    pytest.param(
        {"t.conf": "{{ " + "x" * 70 + " }}"},
        {},
        [unsupported('"{{ ' + "x" * 57 + '..."')],
        id="long-construct-shortened",
    ),
    # Each of these is "" in the agent; kdgen reports it.
    pytest.param(  # byIdx accepts -(len-1)..len-1 only: -3 is rejected for 3 elements
        {"t.conf": "{{{.X.arr[-3]}}}{{{.X.arr[3]}}}"},
        {"X": LISTS},
        [
            f'template "t.conf": {{{{{{.X.arr[-3]}}}}}} {EMPTY}',
            f'template "t.conf": {{{{{{.X.arr[3]}}}}}} {EMPTY}',
        ],
        id="index-out-of-range",
    ),
    pytest.param(  # byFilter: no element has name=grpc
        {"t.conf": "{{{.P.ports[name=grpc].port}}}"},
        {"P": DOC_PORTS},
        [f'template "t.conf": {{{{{{.P.ports[name=grpc].port}}}}}} {EMPTY}'],
        id="filter-no-match",
    ),
    pytest.param(  # byFilter meets null before the match: reflect panics, QueryByFields recovers
        {"t.conf": "{{{.X.L[n=b].v}}}"},
        {"X": LISTS},
        [f'template "t.conf": {{{{{{.X.L[n=b].v}}}}}} {EMPTY}'],
        id="filter-null-element-panics",
    ),
    pytest.param(  # the pre-scan turns every "." inside [...] into "#", so "a.b" never matches
        {"t.conf": "{{{.H.hosts[name=a.b].ip}}}"},
        {"H": '{"hosts":[{"name":"a.b","ip":"10.0.0.1"}]}'},
        [f'template "t.conf": {{{{{{.H.hosts[name=a.b].ip}}}}}} {EMPTY}'],
        id="filter-value-with-dot",
    ),
    pytest.param(  # %v of 1e21 is "1e+21", which Atoi rejects
        {"t.conf": "{{{.X.arr[.X.big]}}}{{{.S.x}}}"},
        {"X": LISTS, "S": "plain"},
        [
            f'template "t.conf": {{{{{{.X.arr[.X.big]}}}}}} {EMPTY}',
            f'template "t.conf": {{{{{{.S.x}}}}}} {EMPTY}',
        ],
        id="bad-computed-index-and-field-of-string",
    ),
    # buildStructMap calls reflect.TypeOf(nil).Kind() for a value that is JSON null: every
    # kuscia call then fails with a nil pointer dereference, whichever key it reads.
    pytest.param(
        {"t.conf": "{{{.A}}}"},
        {"A": "v", "NULLY": " null "},
        [
            'template "t.conf": key "NULLY" holds JSON null, on which the Kuscia agent fails '
            "every {{{.PATH}}} placeholder (its buildStructMap panics); give it another value"
        ],
        id="json-null-value",
    ),
]


MISSING_CASES = [
    # The agent's renderConfig executes with missingkey=zero: a missing key renders "" (and its
    # kusciaQueryValue gives "" for nothing). kdgen does the same and warns once per template
    # and key, in order of first use, across all templates.
    pytest.param(
        {
            "serving-config.conf": (
                "{{.SERVING_ID}} {{.SERVING_LOGGING_CONFIG}} {{.SERVING_LOGGING_CONFIG}} "
                "[{{{.SERVING_OSS_META.bucket}}}]"
            ),
            "logging-config.conf": "<{{ .SERVING_LOGGING_CONFIG }}>",
        },
        {"SERVING_ID": "s"},
        {"serving-config.conf": "s   []", "logging-config.conf": "<>"},
        [
            missing("serving-config.conf", "SERVING_LOGGING_CONFIG"),
            missing("serving-config.conf", "SERVING_OSS_META"),
            missing("logging-config.conf", "SERVING_LOGGING_CONFIG"),
        ],
        id="missing-keys-all-reported",
    ),
    # "[.B.i]" reads B from the root: both heads are keys the path needs.
    pytest.param(
        {"t.conf": "[{{{.A.x[.B.i]}}}]"},
        {},
        {"t.conf": "[]"},
        [missing("t.conf", "A"), missing("t.conf", "B")],
        id="missing-computed-index-key",
    ),
    # mergeDataMap uppercases data keys, not the template's: {{.serving_id}} never matches.
    pytest.param(
        {"t.conf": "[{{.serving_id}}]"},
        {"SERVING_ID": "s"},
        {"t.conf": "[]"},
        [
            missing(
                "t.conf",
                "serving_id",
                f'{HINT}; env names are uppercase, did you mean "SERVING_ID"?',
            )
        ],
        id="lowercase-key-hint",
    ),
    # Keys are looked up in the data only, never as Python attributes.
    pytest.param(
        {"t.conf": "[{{.__class__}}]"},
        {},
        {"t.conf": "[]"},
        [missing("t.conf", "__class__")],
        id="dunder-key-missing",
    ),
    pytest.param(
        {"t.conf": "[{{{.__globals__.os}}}]"},
        {},
        {"t.conf": "[]"},
        [missing("t.conf", "__globals__")],
        id="dunder-path-missing",
    ),
]


@pytest.mark.parametrize(("templates", "values", "want", "warnings"), MISSING_CASES)
def test_missing_keys_render_empty_with_a_warning(
    templates: dict[str, str], values: dict[str, str], want: dict[str, str], warnings: list[str]
) -> None:
    rendered, found = render_config_templates(templates, values)
    assert rendered == want
    assert [(p.message, p.severity) for p in found] == [(w, "warning") for w in warnings]


def test_missing_keys_are_warned_beside_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        render_config_templates({"t.conf": "{{.A}} {{if .B}}"}, {})
    assert [p.severity for p in caught.value.problems] == ["error", "warning"]


@pytest.mark.parametrize(("templates", "values", "want"), PROBLEM_CASES)
def test_problems(templates: dict[str, str], values: dict[str, str], want: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        render_config_templates(templates, values)

    assert [p.message for p in caught.value.problems] == want


def test_problem_is_located_for_the_caller() -> None:
    rendered = render_config_templates({"serving-config.conf": "{{.SERVING_LOGGING_CONFIG}}"}, {})

    assert rendered == (
        {"serving-config.conf": ""},
        [
            Problem(
                'template "serving-config.conf": key "SERVING_LOGGING_CONFIG" is not defined, '
                'rendered as "" as the Kuscia agent does (set it in the inventory\'s '
                "spec.templateValues)",
                field="spec.configTemplates[serving-config.conf]",
                severity="warning",
            )
        ],
    )


def test_json_null_is_fine_without_triple_braces() -> None:
    # Only the kuscia helper builds the structure map; {{.KEY}} just quotes the text.
    rendered = render_config_templates({"t.conf": "{{.N}}"}, {"N": " null "})
    assert rendered == ({"t.conf": " null "}, [])


# --- template text is never interpreted ----------------------------------------------------

LITERAL_CASES = [
    pytest.param(
        "{% if true %}x{% endif %} {# c #} {% raw %}{%- set y = 1 %} #} %} {{.A}}",
        {"A": "v"},
        "{% if true %}x{% endif %} {# c #} {% raw %}{%- set y = 1 %} #} %} v",
        id="jinja-statements-and-comments-literal",
    ),
    pytest.param(
        "{%- set x = cycler.__init__.__globals__.os.popen('id').read() %}{{.A}}",
        {"A": "v"},
        "{%- set x = cycler.__init__.__globals__.os.popen('id').read() %}v",
        id="sandbox-escape-in-text-inert",
    ),
    pytest.param(
        "{{.V}}|{{{.V}}}",
        {"V": "{{ 7*7 }} {% if 1 %}"},
        "{{ 7*7 }} {% if 1 %}|{{ 7*7 }} {% if 1 %}",
        id="jinja-syntax-in-values-literal",
    ),
    # Keys are looked up in the data only, never as Python attributes.
    pytest.param(
        "{{.__class__}} {{.items}}", {"__class__": "c", "items": "i"}, "c i", id="dunder-keys"
    ),
    pytest.param("[{{{.V.__class__}}}]", {"V": '{"__class__":""}'}, "[]", id="dunder-path"),
]


@pytest.mark.parametrize(("template", "values", "want"), LITERAL_CASES)
def test_template_text_stays_literal(template: str, values: dict[str, str], want: str) -> None:
    assert render_config_templates({"t.conf": template}, values) == ({"t.conf": want}, [])


SANDBOX_CASES = [
    pytest.param(
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        {},
        unsupported("\"{{ ''.__class__.__mro__[1].__subclasses__() }}\""),
        id="jinja-expression-rejected",
    ),
    pytest.param(
        "{{{.V.__class__}}}",
        {"V": '{"a":1}'},
        f'template "t.conf": {{{{{{.V.__class__}}}}}} {EMPTY}',
        id="attribute-not-walked",
    ),
]


@pytest.mark.parametrize(("template", "values", "want"), SANDBOX_CASES)
def test_sandbox_escape_attempts_fail_cleanly(
    template: str, values: dict[str, str], want: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        render_config_templates({"t.conf": template}, values)

    assert [p.message for p in caught.value.problems] == [want]
