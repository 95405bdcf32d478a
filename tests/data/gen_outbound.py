"""Writes the CampaignMember Outbound Message cases in tests/data/salesforce/ (run once; the
outputs are committed). Shapes follow the public fixtures next to them and SPEC section 6."""
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "salesforce")
ORG = "00D000000000001AAA"

ENV_OPEN = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n <soapenv:Body>\n')
ENV_CLOSE = ' </soapenv:Body>\n</soapenv:Envelope>\n'


def header(org=ORG, session='<SessionId xsi:nil="true"/>'):
    return ('  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">\n'
            f'   <OrganizationId>{org}</OrganizationId>\n'
            '   <ActionId>04k5g000000TestAAA</ActionId>\n'
            f'   {session}\n'
            '   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001</EnterpriseUrl>\n'
            '   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001</PartnerUrl>\n')


def notification(i, status="Responded", person="lead", email=True, stype="sf:CampaignMember"):
    nid = f"04l5g{i:010d}AAA"
    cm = f"00v5g{i:010d}AAA"
    pid = (f"<sf:LeadId>00Q5g{i:010d}AAA</sf:LeadId>" if person == "lead"
           else f"<sf:ContactId>0035g{i:010d}AAA</sf:ContactId>")
    mail = f"<sf:Email>person{i}@example.com</sf:Email>" if email else ""
    return (f'   <Notification>\n    <Id>{nid}</Id>\n'
            f'    <sObject xsi:type="{stype}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">\n'
            f'     <sf:Id>{cm}</sf:Id>\n'
            '     <sf:CampaignId>7015g000000CampAAA</sf:CampaignId>\n'
            f'     {pid}\n'
            f'     <sf:Status>{status}</sf:Status>\n'
            f'     {mail}\n'
            f'     <sf:FirstName>First{i}</sf:FirstName>\n'
            f'     <sf:LastName>Last{i}</sf:LastName>\n'
            '     <sf:CompanyOrAccount>Acme &amp; Sons</sf:CompanyOrAccount>\n'
            f'     <sf:LastModifiedDate>2026-11-29T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z</sf:LastModifiedDate>\n'
            '     <sf:LastModifiedById>005000000000002AAA</sf:LastModifiedById>\n'
            '    </sObject>\n   </Notification>\n')


def message(notes, **kw):
    return ENV_OPEN + header(**kw) + "".join(notes) + "  </notifications>\n" + ENV_CLOSE


def write(name, text):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(text)


write("cm_1.xml", message([notification(1)]))
write("cm_3.xml", message([notification(1, "Sent"), notification(2, "Responded", "contact"),
                           notification(3, "Responded", email=False)],
                          session="<SessionId>00D000000000001!AQsAQsession</SessionId>"))
write("cm_100.xml", message([notification(i) for i in range(1, 101)]))
write("cm_101.xml", message([notification(i) for i in range(1, 102)]))
write("cm_wrong_org.xml", message([notification(1)], org="00D999999999999AAA"))
write("cm_org15.xml", message([notification(1)], org="00D000000000001"))
write("cm_wrong_type.xml", message([notification(1, stype="sf:Contact")]))
# The same message with other prefixes: namespaces decide, not prefixes.
write("cm_other_prefixes.xml",
      '<?xml version="1.0"?>\n<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" '
      'xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><S:Body>'
      '<o:notifications xmlns:o="http://soap.sforce.com/2005/09/outbound">'
      f'<o:OrganizationId>{ORG}</o:OrganizationId><o:ActionId>04k5g000000TestAAA</o:ActionId>'
      '<o:SessionId i:nil="true"/><o:EnterpriseUrl>https://x</o:EnterpriseUrl>'
      '<o:PartnerUrl>https://x</o:PartnerUrl><o:Notification><o:Id>04l5g0000000042AAA</o:Id>'
      '<o:sObject i:type="q:CampaignMember" xmlns:q="urn:sobject.enterprise.soap.sforce.com">'
      '<q:Id>00v5g0000000042AAA</q:Id><q:CampaignId>7015g000000CampAAA</q:CampaignId>'
      '<q:ContactId>0035g0000000042AAA</q:ContactId><q:Status>Attended</q:Status>'
      '<q:Email>pat@example.com</q:Email><q:LastModifiedDate>2026-11-29T10:00:00.000+0000'
      '</q:LastModifiedDate></o:sObject></o:Notification></o:notifications></S:Body></S:Envelope>')
# Right local names in the wrong namespace must not pass.
write("cm_wrong_ns.xml", message([notification(1)]).replace(
    "http://soap.sforce.com/2005/09/outbound", "http://example.com/not-outbound"))
write("cm_empty_record.xml", message([notification(1),
      '   <Notification>\n    <Id>04l5g0000000002AAA</Id>\n'
      '    <sObject xsi:type="sf:CampaignMember" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"/>\n'
      '   </Notification>\n']))
write("cm_missing_status.xml", message([notification(1)]).replace(
    "     <sf:Status>Responded</sf:Status>\n", ""))
write("cm_malformed.xml", message([notification(1)])[:-60])
write("not_soap.xml", '<?xml version="1.0"?><order><id>1</id></order>\n')
write("xxe.xml", '<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
      + message([notification(1)]).split("\n", 1)[1].replace(
          "<sf:FirstName>First1</sf:FirstName>", "<sf:FirstName>&xxe;</sf:FirstName>"))
bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                  for i in range(1, 10))
        + ']>\n')
write("entity_bomb.xml", bomb + message([notification(1)]).split("\n", 1)[1].replace(
    "<sf:FirstName>First1</sf:FirstName>", "<sf:FirstName>&lol9;</sf:FirstName>"))
