-- Argo CD health for kuscia.secretflow/KusciaDeployment, from the status Kuscia's controller
-- (or kdgen status-sync) writes. Install as argocd-cm
-- resource.customizations.health.kuscia.secretflow_KusciaDeployment.
--
--   no status yet     Progressing  nothing has reported on the KD yet
--   Available         Healthy
--   Progressing       Progressing  with Kuscia's reason (the party and its pod's problem)
--   PartialAvailable  Progressing  every party has available pods, but some Deployment has
--                                  fewer available than it runs: a rollout in flight (surge)
--                                  or a pod being replaced. Argo CD waits, as it does for a
--                                  Deployment mid-rollout ...
--                     Degraded     ... unless a party's Deployment reports
--                                  ProgressDeadlineExceeded: the rollout is stuck, as Argo CD
--                                  judges a plain Deployment.
--   Failed            Degraded     with Kuscia's reason and message
--   anything else     Unknown
local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the KusciaDeployment status"
  return hs
end

local function counts()
  if status.availableParties ~= nil and status.totalParties ~= nil then
    return status.availableParties .. "/" .. status.totalParties .. " parties available"
  end
  return ""
end

local function explained(text)
  local parts = {}
  for _, part in ipairs({text, status.reason or "", status.message or ""}) do
    if part ~= "" then
      table.insert(parts, part)
    end
  end
  return table.concat(parts, ": ")
end

local function stuck_deployments()
  local stuck = {}
  for domain, deployments in pairs(status.partyDeploymentStatuses or {}) do
    for name, party in pairs(deployments) do
      for _, condition in ipairs(party.conditions or {}) do
        if condition.type == "Progressing" and condition.status == "False"
            and condition.reason == "ProgressDeadlineExceeded" then
          table.insert(stuck, domain .. "/" .. name)
        end
      end
    end
  end
  table.sort(stuck)
  return stuck
end

local phase = status.phase
if phase == "Available" then
  hs.status = "Healthy"
  hs.message = counts()
elseif phase == "PartialAvailable" then
  local stuck = stuck_deployments()
  if #stuck > 0 then
    hs.status = "Degraded"
    hs.message = "rollout exceeded its progress deadline: " .. table.concat(stuck, ", ")
  else
    hs.status = "Progressing"
    hs.message = counts() .. ", some replicas not yet available"
  end
elseif phase == "Progressing" then
  hs.status = "Progressing"
  hs.message = explained(counts())
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = explained("Failed")
else
  hs.status = "Unknown"
  hs.message = "unknown phase " .. phase
end
return hs
