#!/usr/bin/env bash
# Seeds the bundled simulators with one Salesforce campaign and one Marketo program, maps
# them, and prints the commands that make a change on each side and show it on the other.
# Run by `make run` when no CRM credentials are set.
set -euo pipefail
PORT=${PORT:-8080}; SF=${SF_SIM_PORT:-8091}; MK=${MKTO_SIM_PORT:-8092}
TOKEN=${ADMIN_TOKEN:?set ADMIN_TOKEN (scripts/run.sh generates one)}
for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done

sf_seed=$(curl -sf -X POST "localhost:$SF/_sim/seed" -H 'Content-Type: application/json' -d '{
  "campaigns": [{"Name": "Webinar November", "statuses": [
     {"Label": "Invited", "IsDefault": true}, {"Label": "Registered"}, {"Label": "No Show"},
     {"Label": "Attended", "HasResponded": true},
     {"Label": "Attended On-demand", "HasResponded": true}]}],
  "contacts": [{"Email": "ann.lee@example.com", "FirstName": "Ann", "LastName": "Lee"}]}')
mk_seed=$(curl -sf -X POST "localhost:$MK/_sim/seed" -H 'Content-Type: application/json' -d '{
  "programs": [{"name": "Webinar November", "channel": "Webinar",
                "costs": [{"startDate": "2026-11-01", "cost": 1200, "note": "Venue"}]}],
  "leads": [{"email": "ann.lee@example.com", "firstName": "Ann", "lastName": "Lee",
             "company": "Acme"}]}')
field() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
campaign=$(field 'd["campaigns"][0]["Id"]' <<<"$sf_seed")
contact=$(field 'd["contacts"][0]["Id"]' <<<"$sf_seed")
program=$(field 'd["programs"][0]["id"]' <<<"$mk_seed")
lead=$(field 'd["leads"][0]["id"]' <<<"$mk_seed")
# The campaign has the statuses of the program's channel (Webinar), so the mapping validates
# and can be enabled; otherwise the answer names what is missing on which side.
if ! answer=$(curl -s -w '\n%{http_code}' -X PUT "localhost:$PORT/v1/mappings/$program" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"campaignId\": \"$campaign\", \"enabled\": true}") || [[ "${answer##*$'\n'}" != 20? ]]; then
  echo "demo: mapping program $program to campaign $campaign failed: ${answer:-no answer}" >&2
  exit 1
fi

cat <<MSG

==== campaign-sync demo: Marketo program $program <-> Salesforce campaign $campaign ====

1. A Marketo change (the simulator fires the Marketo webhook, as a trigger campaign would):
   curl -X POST localhost:$MK/_sim/members -H 'Content-Type: application/json' \\
        -d '{"programId": $program, "leadId": $lead, "statusName": "Registered"}'
   ... and it is in Salesforce:
   curl -s "localhost:$SF/_sim/members?campaignId=$campaign"

2. A Salesforce change (the simulator sends the Outbound Message):
   curl -X POST localhost:$SF/_sim/members -H 'Content-Type: application/json' \\
        -d '{"CampaignId": "$campaign", "ContactId": "$contact", "Status": "Attended"}'
   ... and it is in Marketo:
   curl -s "localhost:$MK/_sim/members?programId=$program"

3. The service itself:
   curl -s -H "Authorization: Bearer $TOKEN" localhost:$PORT/v1/mappings
   curl -s localhost:$PORT/metrics | grep -E 'events_(received|applied)_total'

The campaign's Type and ActualCost come from the program's channel and costs:
   curl -s localhost:$SF/_sim/state | python3 -m json.tool | grep -E '"(Type|ActualCost)"'
MSG
