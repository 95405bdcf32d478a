-- POST /webhooks/salesforce: a CampaignMember Outbound Message (SPEC section 6, the shape of
-- tests/data/salesforce/cm_1.xml) with args[2] notifications, every Notification Id unique.
-- args[3], if given, is another OrganizationId: the service must refuse the message with 403
-- after parsing it, before storing anything (the ingest's cost without its Redis write).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local head_fmt = '<?xml version="1.0" encoding="UTF-8"?>\n' ..
  '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' ..
  'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' ..
  ' <soapenv:Body>\n' ..
  '  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">\n' ..
  '   <OrganizationId>%s</OrganizationId>\n' ..
  '   <ActionId>04k5g000000TestAAA</ActionId>\n' ..
  '   <SessionId xsi:nil="true"/>\n' ..
  '   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001</EnterpriseUrl>\n' ..
  '   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001</PartnerUrl>\n'
local tail = '  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n'
local statuses = {"Sent", "Responded"}

function init(args)
  common_init(args)
  headers = {["Content-Type"] = "text/xml; charset=UTF-8", ["SOAPAction"] = '""'}
  other_org = args[3]
  head = string.format(head_fmt, other_org or "00D000000000001AAA")
end

local function notification(now)
  seq = seq + 1
  local s = sfx()
  return '   <Notification>\n    <Id>04l' .. s .. '</Id>\n' ..
    '    <sObject xsi:type="sf:CampaignMember" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n' ..
    '     <sf:Id>00v' .. s .. '</sf:Id>\n' ..
    '     <sf:CampaignId>7015g000000CampAAA</sf:CampaignId>\n' ..
    '     <sf:LeadId>00Q' .. s .. '</sf:LeadId>\n' ..
    '     <sf:Status>' .. statuses[seq % 2 + 1] .. '</sf:Status>\n' ..
    '     <sf:Email>person' .. s .. '@example.com</sf:Email>\n' ..
    '     <sf:FirstName>First' .. seq .. '</sf:FirstName>\n' ..
    '     <sf:LastName>Last' .. seq .. '</sf:LastName>\n' ..
    '     <sf:CompanyOrAccount>Acme &amp; Sons</sf:CompanyOrAccount>\n' ..
    '     <sf:LastModifiedDate>' .. now .. '</sf:LastModifiedDate>\n' ..
    '     <sf:LastModifiedById>005000000000002AAA</sf:LastModifiedById>\n' ..
    '    </sObject>\n   </Notification>\n'
end

function request()
  local now = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local parts = {head}
  for i = 1, per_request do parts[#parts + 1] = notification(now) end
  parts[#parts + 1] = tail
  return wrk.format("POST", "/webhooks/salesforce", headers, table.concat(parts))
end

function response(status, headers, body)
  if other_org then
    check(status, body, 403, "<faultstring>")
  else
    check(status, body, 200, "<Ack>true</Ack>")
  end
end
