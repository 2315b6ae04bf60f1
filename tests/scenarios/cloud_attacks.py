#!/usr/bin/env python3
"""Three weeks of one AWS account's benign automation and administrators, then the attacks a
stolen cloud credential is used for, written as CloudTrail log files (gzip, as S3 stores them)
and as OCSF events; and an Okta org's integrations and admins with the attacks on an Okta
token, as Okta System Log events. Deterministic for a seed; standard library only.

    cloud_attacks.py OUT [--seed N]

writes OUT/cloudtrail/*.json.gz (one log file per day), OUT/ocsf.jsonl, OUT/okta.jsonl and
OUT/labels.json: per format, the attacks (the event ids they consist of, the detector each
must raise and on which account) and the account-days of benign history after the warm-up.
The values are made up for this scenario.
"""

import gzip
import json
import random
import sys
from datetime import datetime, timedelta, timezone

ACCOUNT_ID = "111122223333"
START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
DAYS = 21
WARMUP_DAYS = 7
ATTACK_DAY = 18  # attacks fall on days 18 to 20


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Call:
    """One call in the scenario, before it is written in a format."""

    def __init__(self, t, who, service, op, **kw):
        self.t, self.who, self.service, self.op = t, who, service, op
        self.key = kw.get("key", who.get("key"))
        self.ip = kw.get("ip")
        self.error = kw.get("error")  # ("AccessDenied", message) or ("Failure", message)
        self.params = kw.get("params")
        self.response = kw.get("response")
        self.mfa = kw.get("mfa")
        self.resource = kw.get("resource")
        self.attack = kw.get("attack")


def user(name, key, agent):
    return {"kind": "user", "name": name, "key": key, "agent": agent}


def role_session(role, session, key, agent, instance=False):
    return {"kind": "role", "name": role, "session": session, "key": key, "agent": agent, "instance": instance}


def aws_scenario(rng):
    calls = []
    day = lambda d: START + timedelta(days=d)

    def every(who, d, first_hour, last_hour, step_minutes, ops, ips, jitter=60):
        t = day(d) + timedelta(hours=first_hour)
        end = day(d) + timedelta(hours=last_hour)
        while t < end:
            service, op = rng.choice(ops)
            at = t + timedelta(seconds=rng.randrange(jitter))
            calls.append(Call(at, who, service, op, ip=rng.choice(ips)))
            t += timedelta(minutes=step_minutes)

    ci_ips = ["34.201.17.%d" % i for i in (10, 11, 12)]
    office_ips = ["203.0.113.%d" % i for i in (20, 21)]
    datadog_ips = ["3.233.144.%d" % i for i in (5, 6)]
    apps = []
    for i in range(1, 8):
        apps.append((user("svc-app-%d" % i, "AKIA2APP%02dEXAMPLEKEY" % i, "aws-sdk-java/2.25.%d" % i),
                     ["18.%d.%d.%d" % (200 + i, 40, j) for j in (7, 8)]))
    reporting = user("svc-reporting", "AKIA2REPORTINGEXAMPL", "aws-sdk-go-v2/1.30.1")
    rotator = user("secret-rotator", "AKIA2ROTATOREXAMPLE1", "Boto3/1.34.10")
    backup = user("backup-agent", "AKIA2BACKUPEXAMPLE01", "Boto3/1.34.10")
    log_admin = user("log-pipeline", "AKIA2LOGPIPEEXAMPLE1", "aws-cli/2.17.20")
    admin = {"kind": "console", "name": "ops-admin", "key": None, "agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
    old_ci_key, new_ci_key = "AKIA2CIDEPLOYOLDKEY1", "AKIA2CIDEPLOYNEWKEY1"
    ci = user("ci-deploy", old_ci_key, "aws-cli/2.17.20 md/command#cloudformation.deploy")

    for d in range(DAYS):
        weekday = (START + timedelta(days=d)).weekday() < 5
        # An instance role of a web application: a new session key every 6 hours, always
        # from the instance's own address.
        for block in range(4):
            session = role_session("web-app", "i-0a1b2c3d4e5f60718", "ASIA2WEB%03d%02dEXAMPL" % (d, block),
                                   "aws-sdk-java/2.25.40", instance=True)
            every(session, d, block * 6, block * 6 + 6, 10,
                  [("s3", "GetObject"), ("dynamodb", "GetItem"), ("dynamodb", "PutItem"), ("sqs", "ReceiveMessage")],
                  ["52.28.61.14"])
        # A monitoring SaaS assuming a role from its own addresses.
        mon = role_session("datadog-integration", "DatadogAWSIntegration", "ASIA2DATADOG%02dEXAMP" % d,
                           "Datadog/1.0")
        every(mon, d, 0, 24, 20, [("cloudwatch", "GetMetricData"), ("ec2", "DescribeInstances"),
                                  ("tag", "GetResources")], datadog_ips)
        # Service users on their own schedules.
        for i, (app, ips) in enumerate(apps):
            if i % 3 == 0 or weekday:
                every(app, d, 6 + i % 3, 20 - i % 4, 15 + 5 * i,
                      [("s3", "GetObject"), ("s3", "PutObject"), ("sqs", "SendMessage"),
                       ("dynamodb", "Query")], ips)
        # Reading one secret an hour, and its Athena reports on weekdays.
        every(reporting, d, 0, 24, 60, [("secretsmanager", "GetSecretValue")], ["18.196.12.40"])
        if weekday:
            every(reporting, d, 7, 19, 30, [("athena", "StartQueryExecution"), ("athena", "GetQueryResults")],
                  ["18.196.12.40"])
        # The rotation job: every Monday at 02:00 it reads and rotates forty secrets.
        if d % 7 == 0:
            for n in range(40):
                at = day(d) + timedelta(hours=2, seconds=2 * n)
                calls.append(Call(at, rotator, "secretsmanager", "GetSecretValue", ip="35.157.4.2",
                                  resource="arn:aws:secretsmanager:eu-west-1:%s:secret:app/%02d" % (ACCOUNT_ID, n)))
                calls.append(Call(at + timedelta(seconds=1), rotator, "secretsmanager", "RotateSecret",
                                  ip="35.157.4.2"))
        every(rotator, d, 0, 24, 240, [("sts", "GetCallerIdentity")], ["35.157.4.2"])
        # Nightly snapshots, shared with the disaster-recovery account: its job, every day.
        every(backup, d, 1, 3, 10, [("ec2", "CreateSnapshot"), ("ec2", "DescribeSnapshots")], ["35.157.9.9"])
        calls.append(Call(day(d) + timedelta(hours=3, minutes=5), backup, "ec2", "ModifySnapshotAttribute",
                          ip="35.157.9.9", params={"snapshotId": "snap-0%d" % d,
                                                   "createVolumePermission": {"add": {"items": [{"userId": "444455556666"}]}}}))
        # A log pipeline that manages the trail's event selectors daily.
        every(log_admin, d, 4, 5, 15, [("cloudtrail", "DescribeTrails"), ("cloudtrail", "GetEventSelectors"),
                                       ("cloudtrail", "PutEventSelectors")], ["35.157.4.7"])
        # CI deploys on weekdays.
        if weekday:
            every(ci, d, 8, 18, 20, [("cloudformation", "DescribeStacks"), ("cloudformation", "UpdateStack"),
                                     ("ec2", "DescribeInstances"), ("lambda", "UpdateFunctionCode")], ci_ips)
        # The administrator signs in with MFA on weekdays and rotates a few users' keys.
        if weekday:
            calls.append(Call(day(d) + timedelta(hours=9, minutes=rng.randrange(30)), admin, "signin",
                              "ConsoleLogin", ip=rng.choice(office_ips), mfa=True))
        if d in (2, 4, 9):
            target = {2: "svc-app-1", 4: "svc-app-2", 9: "backup-agent"}[d]
            calls.append(Call(day(d) + timedelta(hours=10), admin, "iam", "CreateAccessKey", ip=office_ips[0],
                              key="ASIA2ADMINCONSOLE%02d" % d, params={"userName": target},
                              response={"accessKey": {"accessKeyId": "AKIA2ROTATED%02dEXAMP" % d,
                                                      "status": "Active", "userName": target}}))
        # ci-deploy's key is rotated on day 10: the new key is made, the old one deleted.
        if d == 10:
            calls.append(Call(day(d) + timedelta(hours=7), admin, "iam", "CreateAccessKey", ip=office_ips[0],
                              key="ASIA2ADMINCONSOLE10", params={"userName": "ci-deploy"},
                              response={"accessKey": {"accessKeyId": new_ci_key, "status": "Active",
                                                      "userName": "ci-deploy"}}))
            ci["key"] = new_ci_key
            calls.append(Call(day(d) + timedelta(hours=19), admin, "iam", "DeleteAccessKey", ip=office_ips[0],
                              key="ASIA2ADMINCONSOLE10", params={"userName": "ci-deploy", "accessKeyId": old_ci_key}))

    attacks = []

    def attack(name, detector, account, made):
        ids = []
        for c in made:
            c.attack = name
            calls.append(c)
            ids.append(c)
        attacks.append({"name": name, "detector": detector, "account": account, "calls": ids})

    a = START + timedelta(days=ATTACK_DAY)
    thief = "198.51.100.66"
    web_arn = "arn:aws:iam::%s:role/web-app" % ACCOUNT_ID
    user_arn = lambda n: "arn:aws:iam::%s:user/%s" % (ACCOUNT_ID, n)
    # The web application's instance credentials, read through an SSRF, used off the instance.
    stolen = role_session("web-app", "i-0a1b2c3d4e5f60718", "ASIA2WEB%03d%02dEXAMPL" % (ATTACK_DAY, 1),
                          "aws-cli/2.17.20", instance=True)
    attack("instance credentials off the instance", "session-off-origin", web_arn,
           [Call(a + timedelta(hours=8, seconds=s), stolen, "s3", "ListBuckets", ip=thief) for s in (0, 30)])
    # Twenty secrets read in four seconds with a key that reads one an hour.
    attack("bulk secret read", "secret-read-rate", user_arn("svc-reporting"),
           [Call(a + timedelta(hours=11, minutes=30, milliseconds=200 * n), reporting, "secretsmanager",
                 "GetSecretValue", ip="18.196.12.40",
                 resource="arn:aws:secretsmanager:eu-west-1:%s:secret:prod/%02d" % (ACCOUNT_ID, n))
            for n in range(20)])
    # A key created for another user by a deployment key that never made one.
    attack("access key for another user", "credential-for-other", user_arn("ci-deploy"),
           [Call(a + timedelta(hours=13), ci, "iam", "CreateAccessKey", ip=ci_ips[0],
                 params={"userName": "ops-admin"},
                 response={"accessKey": {"accessKeyId": "AKIA2PERSISTEXAMPLE1", "status": "Active",
                                         "userName": "ops-admin"}})])
    # Logging turned off by a service user.
    app3, ips3 = apps[2]
    attack("logging turned off", "audit-log-tampering", user_arn("svc-app-3"),
           [Call(a + timedelta(hours=14), app3, "cloudtrail", "StopLogging", ip=ips3[0],
                 resource="arn:aws:cloudtrail:eu-west-1:%s:trail/org-trail" % ACCOUNT_ID)])
    # A snapshot shared with an outside account.
    app4, ips4 = apps[3]
    attack("snapshot shared", "public-sharing", user_arn("svc-app-4"),
           [Call(a + timedelta(hours=15), app4, "ec2", "ModifySnapshotAttribute", ip=ips4[0],
                 params={"snapshotId": "snap-0db", "createVolumePermission": {"add": {"items": [{"group": "all"}]}}})])
    # A user and an administrator policy made by a service user.
    app2, ips2 = apps[1]
    attack("user created with admin policy", "iam-persistence", user_arn("svc-app-2"),
           [Call(a + timedelta(days=1, hours=9), app2, "iam", "CreateUser", ip=ips2[0], params={"userName": "support-x"}),
            Call(a + timedelta(days=1, hours=9, seconds=5), app2, "iam", "AttachUserPolicy", ip=ips2[0],
                 params={"userName": "support-x", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})])
    # A service user reading a secret for the first time.
    app6, ips6 = apps[5]
    attack("first secret read", "secret-access", user_arn("svc-app-6"),
           [Call(a + timedelta(days=1, hours=10), app6, "secretsmanager", "GetSecretValue", ip=ips6[0],
                 resource="arn:aws:secretsmanager:eu-west-1:%s:secret:prod/db" % ACCOUNT_ID)])
    # An established key used from a network it never used.
    app1, _ = apps[0]
    attack("key from a new network", "key-new-network", user_arn("svc-app-1"),
           [Call(a + timedelta(days=1, hours=12, seconds=s), app1, "s3", "GetObject", ip="45.137.21.9")
            for s in (0, 40, 80)])
    # The deleted ci-deploy key used again.
    old = user("ci-deploy", old_ci_key, "aws-cli/2.17.20")
    attack("deleted key used again", "revoked-key-use", user_arn("ci-deploy"),
           [Call(a + timedelta(days=1, hours=14), old, "sts", "GetCallerIdentity", ip=thief)])
    # Guessing the administrator's console password, then a sign-in without MFA.
    attack("console password guessing", "failed-auth-burst", user_arn("ops-admin"),
           [Call(a + timedelta(days=2, hours=3, seconds=20 * n), admin, "signin", "ConsoleLogin", ip=thief,
                 error=("Failure", "Failed authentication"), mfa=False) for n in range(12)])
    attack("sign-in without MFA", "sign-in-without-mfa", user_arn("ops-admin"),
           [Call(a + timedelta(days=2, hours=4), admin, "signin", "ConsoleLogin", ip=thief, mfa=False)])
    # Enumeration with a service user's key: a burst of denied calls.
    app5, ips5 = apps[4]
    attack("denied enumeration", "denied-burst", user_arn("svc-app-5"),
           [Call(a + timedelta(days=2, hours=10, seconds=10 * n), app5, svc, op, ip=ips5[0],
                 error=("AccessDenied", "User is not authorized to perform this operation"))
            for n, (svc, op) in enumerate([("iam", "ListUsers"), ("iam", "ListRoles"), ("ec2", "DescribeVpcs"),
                                           ("s3", "ListBuckets"), ("lambda", "ListFunctions")] * 6)])
    calls.sort(key=lambda c: c.t)
    actors = {"app": apps[0], "web": stolen, "admin": admin, "thief": thief}
    return calls, attacks, actors


def techniques(actors):
    """Well-known AWS attack techniques (as catalogued by open-source attack simulators), each
    made by an established service user's key from its usual address on day 19 at 11:00,
    except where the technique is the network (instance credentials, a console sign-in), and the
    detector each should raise."""
    app, ips = actors["app"]
    ip = ips[0]
    t0 = START + timedelta(days=19, hours=11)
    arn = lambda kind, name: "arn:aws:%s:eu-west-1:%s:%s" % (kind, ACCOUNT_ID, name)

    def calls(*specs, who=None, at=ip, error=None):
        out = []
        for n, spec in enumerate(specs):
            service, op = spec[0], spec[1]
            params = spec[2] if len(spec) > 2 else None
            resource = spec[3] if len(spec) > 3 else None
            out.append(Call(t0 + timedelta(seconds=2 * n), who or app, service, op, ip=at, params=params,
                            resource=resource, error=error))
        return out

    secrets = [("secretsmanager", "GetSecretValue", {"secretId": "prod/%02d" % n}, arn("secretsmanager", "secret:prod/%02d" % n))
               for n in range(20)]
    listing = [("secretsmanager", "ListSecrets")]
    return [
        ("ec2-steal-instance-credentials", "credential access", "session-off-origin",
         calls(("sts", "GetCallerIdentity"), ("s3", "ListBuckets"), who=actors["web"], at=actors["thief"])),
        ("ec2-get-password-data", "credential access", "secret-access",
         calls(*[("ec2", "GetPasswordData", {"instanceId": "i-0%d" % n}) for n in range(5)])),
        ("secretsmanager-retrieve-secrets", "credential access", "secret-access", calls(*(listing + secrets))),
        ("secretsmanager-batch-retrieve-secrets", "credential access", "secret-access",
         calls(("secretsmanager", "ListSecrets"), ("secretsmanager", "BatchGetSecretValue", {"filters": [{"key": "tag-key", "values": ["env"]}]}))),
        ("ssm-retrieve-securestring-parameters", "credential access", "secret-access",
         calls(("ssm", "DescribeParameters"), ("ssm", "GetParameters", {"names": ["/app/db"], "withDecryption": True}))),
        ("cloudtrail-delete", "defense evasion", "audit-log-tampering",
         calls(("cloudtrail", "DeleteTrail", {"name": "org-trail"}, arn("cloudtrail", "trail/org-trail")))),
        ("cloudtrail-event-selectors", "defense evasion", "audit-log-tampering",
         calls(("cloudtrail", "PutEventSelectors", {"trailName": "org-trail"}, arn("cloudtrail", "trail/org-trail")))),
        ("cloudtrail-lifecycle-rule", "defense evasion", "audit-log-tampering",
         calls(("s3", "PutBucketLifecycle", {"bucketName": "org-trail-logs"}))),
        ("cloudtrail-stop", "defense evasion", "audit-log-tampering",
         calls(("cloudtrail", "StopLogging", {"name": "org-trail"}, arn("cloudtrail", "trail/org-trail")))),
        ("dns-delete-logs", "defense evasion", "audit-log-tampering",
         calls(("route53resolver", "DisassociateResolverQueryLogConfig"), ("route53resolver", "DeleteResolverQueryLogConfig"))),
        ("organizations-leave", "defense evasion", "audit-log-tampering", calls(("organizations", "LeaveOrganization"))),
        ("vpc-remove-flow-logs", "defense evasion", "audit-log-tampering",
         calls(("ec2", "DeleteFlowLogs", {"flowLogIds": ["fl-0a1"]}))),
        ("ec2-enumerate-from-instance", "discovery", "reconnaissance",
         calls(("sts", "GetCallerIdentity"), ("iam", "ListRoles"), ("ec2", "DescribeInstances"), ("s3", "ListBuckets"),
               ("ec2", "DescribeVpcs"), ("ec2", "DescribeSecurityGroups"))),
        ("ec2-download-user-data", "discovery", "discovery-burst",
         calls(*[("ec2", "DescribeInstanceAttribute", {"instanceId": "i-0%d" % n, "attribute": "userData"}) for n in range(15)])),
        ("ses-enumerate", "discovery", "reconnaissance",
         calls(("ses", "GetAccountSendingEnabled"), ("ses", "GetSendQuota"), ("ses", "ListIdentities"))),
        ("ec2-launch-unusual-instances", "execution", "compute-hijacking",
         calls(*[("ec2", "RunInstances", {"instanceType": "p2.xlarge"})] * 3,
               error=("Client.UnauthorizedOperation", "You are not authorized to perform this operation."))),
        ("ec2-user-data", "execution", "remote-execution",
         calls(("ec2", "StopInstances"), ("ec2", "ModifyInstanceAttribute", {"instanceId": "i-0a1", "userData": {}}),
               ("ec2", "StartInstances"))),
        ("ssm-send-command", "execution", "remote-execution",
         calls(("ssm", "SendCommand", {"documentName": "AWS-RunShellScript", "instanceIds": ["i-0a1", "i-0b2"]}))),
        ("ssm-start-session", "execution", "remote-execution", calls(("ssm", "StartSession", {"target": "i-0a1"}))),
        ("ec2-security-group-open-port-22-ingress", "exfiltration", "public-sharing",
         calls(("ec2", "AuthorizeSecurityGroupIngress", {"groupId": "sg-0a1", "ipPermissions": {"items": [{"fromPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}))),
        ("ec2-share-ami", "exfiltration", "public-sharing",
         calls(("ec2", "ModifyImageAttribute", {"imageId": "ami-0a1", "launchPermission": {"add": {"items": [{"userId": "999988887777"}]}}}))),
        ("ec2-share-ebs-snapshot", "exfiltration", "public-sharing",
         calls(("ec2", "ModifySnapshotAttribute", {"snapshotId": "snap-0a1", "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}}))),
        ("rds-share-snapshot", "exfiltration", "public-sharing",
         calls(("rds", "ModifyDBSnapshotAttribute", {"dBSnapshotIdentifier": "prod-db", "attributeName": "restore", "valuesToAdd": ["999988887777"]}))),
        ("s3-backdoor-bucket-policy", "exfiltration", "public-sharing",
         calls(("s3", "PutBucketPolicy", {"bucketName": "invoices"}))),
        ("bedrock-invoke-model", "impact", "model-hijacking",
         calls(*[("bedrock", "InvokeModel", {"modelId": "anthropic.claude-3-haiku"})] * 5)),
        ("s3-ransomware-batch-deletion", "impact", "bulk-deletion-rate",
         calls(*[("s3", "DeleteObjects", {"bucketName": "invoices"})] * 10)),
        ("s3-ransomware-individual-deletion", "impact", "bulk-deletion-rate",
         calls(*[("s3", "DeleteObject", {"bucketName": "invoices", "key": "2026/%03d.pdf" % n}) for n in range(60)])),
        ("console-login-without-mfa", "initial access", "sign-in-without-mfa",
         [Call(t0, actors["admin"], "signin", "ConsoleLogin", ip=actors["thief"], mfa=False)]),
        ("ec2-instance-connect", "lateral movement", "remote-execution",
         calls(("ec2-instance-connect", "SendSSHPublicKey", {"instanceId": "i-0a1", "instanceOSUser": "ec2-user"}))),
        ("ec2-serial-console-send-ssh-public-key", "lateral movement", "remote-execution",
         calls(("ec2", "EnableSerialConsoleAccess"), ("ec2-instance-connect", "SendSerialConsoleSSHPublicKey", {"instanceId": "i-0a1"}))),
        ("iam-backdoor-role", "persistence", "iam-persistence",
         calls(("iam", "UpdateAssumeRolePolicy", {"roleName": "ops"}))),
        ("iam-backdoor-user", "persistence", "credential-for-other",
         calls(("iam", "CreateAccessKey", {"userName": "ops-admin"}, None))),
        ("iam-create-admin-user", "persistence", "iam-persistence",
         calls(("iam", "CreateUser", {"userName": "helpdesk"}), ("iam", "AttachUserPolicy", {"userName": "helpdesk", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))),
        ("iam-create-backdoor-identity-provider", "persistence", "iam-persistence",
         calls(("iam", "CreateSAMLProvider", {"name": "sso-backup"}))),
        ("iam-create-user-login-profile", "persistence", "credential-for-other",
         calls(("iam", "CreateLoginProfile", {"userName": "ops-admin"}))),
        ("lambda-backdoor-function", "persistence", "public-sharing",
         calls(("lambda", "AddPermission20150331v2", {"functionName": "invoice-render", "principal": "*"}))),
        ("lambda-layer-extension", "persistence", "iam-persistence",
         calls(("lambda", "PublishLayerVersion20181031", {"layerName": "ext"}), ("lambda", "UpdateFunctionConfiguration20150331v2", {"functionName": "invoice-render"}))),
        ("lambda-overwrite-code", "persistence", "iam-persistence",
         calls(("lambda", "UpdateFunctionCode20150331v2", {"functionName": "invoice-render"}))),
        ("rolesanywhere-create-trust-anchor", "persistence", "iam-persistence",
         calls(("rolesanywhere", "CreateTrustAnchor", {"name": "backup-anchor"}), ("rolesanywhere", "CreateProfile", {"name": "backup"}))),
        ("sts-federation-token", "persistence", "iam-persistence",
         calls(("sts", "GetFederationToken", {"name": "backup", "policyArns": [{"arn": "arn:aws:iam::aws:policy/AdministratorAccess"}]}))),
        ("iam-update-user-login-profile", "privilege escalation", "credential-for-other",
         calls(("iam", "UpdateLoginProfile", {"userName": "ops-admin"}))),
    ]


def event_id(rng):
    return "%08x-%04x-4%03x-8%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                                           rng.getrandbits(12), rng.getrandbits(48))


def identity(c):
    who = c.who
    if who["kind"] == "role":
        context = {"sessionIssuer": {"type": "Role", "principalId": "AROA2" + who["name"].upper()[:12],
                                     "arn": "arn:aws:iam::%s:role/%s" % (ACCOUNT_ID, who["name"]),
                                     "accountId": ACCOUNT_ID, "userName": who["name"]},
                   "attributes": {"creationDate": iso(c.t.replace(minute=0, second=0)), "mfaAuthenticated": "false"}}
        if who["instance"]:
            context["ec2RoleDelivery"] = "2.0"
        return {"type": "AssumedRole", "principalId": "AROA2%s:%s" % (who["name"].upper()[:12], who["session"]),
                "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT_ID, who["name"], who["session"]),
                "accountId": ACCOUNT_ID, "accessKeyId": c.key, "sessionContext": context}
    out = {"type": "IAMUser", "principalId": "AIDA2" + who["name"].upper().replace("-", "")[:14],
           "arn": "arn:aws:iam::%s:user/%s" % (ACCOUNT_ID, who["name"]), "accountId": ACCOUNT_ID,
           "userName": who["name"]}
    if c.key:
        out["accessKeyId"] = c.key
    return out


def cloudtrail(c, eid):
    record = {"eventVersion": "1.10", "userIdentity": identity(c), "eventTime": iso(c.t),
              "eventSource": "%s.amazonaws.com" % c.service, "eventName": c.op, "awsRegion": "eu-west-1",
              "sourceIPAddress": c.ip, "userAgent": c.who["agent"], "requestParameters": c.params,
              "responseElements": c.response, "requestID": eid[::-1], "eventID": eid,
              "readOnly": c.op.startswith(("Get", "Describe", "List")), "eventType": "AwsApiCall",
              "managementEvent": True, "recipientAccountId": ACCOUNT_ID, "eventCategory": "Management"}
    if c.resource:
        record["resources"] = [{"ARN": c.resource, "accountId": ACCOUNT_ID}]
    if c.op == "ConsoleLogin":
        record["eventType"] = "AwsConsoleSignIn"
        record["responseElements"] = {"ConsoleLogin": "Failure" if c.error else "Success"}
        record["additionalEventData"] = {"MFAUsed": "Yes" if c.mfa else "No", "MobileVersion": "No"}
        if c.error:
            record["errorMessage"] = c.error[1]
    elif c.error:
        record["errorCode"], record["errorMessage"] = c.error
    return record


def ocsf(c, eid):
    """The same call as Security Lake writes CloudTrail in OCSF."""
    ms = int(c.t.timestamp() * 1000)
    base = {"time": ms, "metadata": {"version": "1.1.0", "uid": eid, "product": {"name": "CloudTrail",
                                                                              "vendor_name": "AWS"}},
            "cloud": {"provider": "AWS", "account": {"uid": ACCOUNT_ID}, "region": "eu-west-1"},
            "src_endpoint": {"ip": c.ip}, "http_request": {"user_agent": c.who["agent"]},
            "status_id": 2 if c.error else 1}
    who = c.who
    if who["kind"] == "role":
        actor = {"user": {"type": "AssumedRole", "uid": identity(c)["principalId"], "name": who["session"],
                          "credential_uid": c.key},
                 "session": {"uid": who["session"], "issuer": "arn:aws:iam::%s:role/%s" % (ACCOUNT_ID, who["name"]),
                             "is_mfa": False}}
    else:
        actor = {"user": {"type": "IAMUser", "uid": "arn:aws:iam::%s:user/%s" % (ACCOUNT_ID, who["name"]),
                          "name": who["name"]}}
        if c.key:
            actor["user"]["credential_uid"] = c.key
    if c.op == "ConsoleLogin":
        return dict(base, class_uid=3002, activity_id=1, category_uid=3, is_mfa=bool(c.mfa),
                    user=actor["user"], status_detail=c.error[1] if c.error else None)
    key_change = {"CreateAccessKey": 1, "DeleteAccessKey": 6}.get(c.op)
    if key_change:
        changed = (c.response or {}).get("accessKey", {}).get("accessKeyId") or c.params["accessKeyId"]
        return dict(base, class_uid=3001, activity_id=key_change, category_uid=3, actor=actor,
                    user={"uid": "arn:aws:iam::%s:user/%s" % (ACCOUNT_ID, c.params["userName"]),
                          "name": c.params["userName"], "credential_uid": changed},
                    api={"service": {"name": "iam.amazonaws.com"}, "operation": c.op})
    api = {"service": {"name": "%s.amazonaws.com" % c.service}, "operation": c.op, "request": {"uid": eid[::-1]}}
    if c.error:
        api["response"] = {"error": c.error[0], "error_message": c.error[1]}
    out = dict(base, class_uid=6003, activity_id=99, category_uid=6, actor=actor, api=api)
    if c.resource:
        out["resources"] = [{"uid": c.resource}]
    return out


def okta_scenario(rng):
    """An Okta org: a provisioning integration and a SIEM export on API tokens, a service app on
    client credentials, admins signing in; then the attacks on a token and on an admin."""
    events = []
    day = lambda d: START + timedelta(days=d)
    org = {"provisioner": ("00u1provisioner0001", "provisioning@acme.example", "00T1PROVTOKEN000001",
                           "34.120.8.%d", 15169, "Google LLC", "United States"),
           "siem": ("00u1siemexporter001", "siem-export@acme.example", "00T1SIEMTOKEN000001",
                    "52.57.13.%d", 16509, "Amazon.com, Inc.", "Germany")}
    admins = [("00u1admin0000000001", "alice.admin@acme.example"), ("00u1admin0000000002", "bob.admin@acme.example")]

    def log(t, actor, event_type, result="SUCCESS", token=None, ip=None, asn=None, org_name=None, country=None,
            target=None, reason=None, attack=None):
        e = {"uuid": event_id(rng), "published": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "eventType": event_type,
             "version": "0", "severity": "INFO", "displayMessage": event_type,
             "actor": {"id": actor[0], "type": "User", "alternateId": actor[1], "displayName": actor[1]},
             "client": {"ipAddress": ip, "userAgent": {"rawUserAgent": "okta-sdk-python/2.9.2"},
                        "geographicalContext": {"country": country}},
             "securityContext": {"asNumber": asn, "asOrg": org_name},
             "outcome": {"result": result, "reason": reason},
             "transaction": {"type": "WEB", "id": event_id(rng)[:20], "detail": {}},
             "target": target or []}
        if token:
            e["transaction"]["detail"]["requestApiTokenId"] = token
        e["_attack"] = attack
        events.append(e)
        return e

    for d in range(DAYS):
        weekday = day(d).weekday() < 5
        for name, (uid, login, token, ip, asn, as_org, country) in org.items():
            step = 30 if name == "provisioner" else 15
            t = day(d) + timedelta(hours=6 if name == "provisioner" else 0)
            end = day(d) + timedelta(hours=20 if name == "provisioner" else 24)
            while t < end:
                kind = (rng.choice(["user.lifecycle.update", "group.user_membership.add", "user.read"])
                        if name == "provisioner" else "system.log.read")
                log(t + timedelta(seconds=rng.randrange(60)), (uid, login), kind, token=token,
                    ip=ip % rng.choice((3, 4)), asn=asn, org_name=as_org, country=country,
                    target=[{"id": "00u%016d" % rng.randrange(10 ** 12), "type": "User"}])
                t += timedelta(minutes=step)
        if weekday:
            for admin in admins:
                log(day(d) + timedelta(hours=8, minutes=rng.randrange(50)), admin, "user.session.start",
                    ip="203.0.113.%d" % rng.choice((20, 21)), asn=64501, org_name="Acme Office", country="Ireland")
                log(day(d) + timedelta(hours=10, minutes=rng.randrange(50)), admin, "user.lifecycle.update",
                    ip="203.0.113.20", asn=64501, org_name="Acme Office", country="Ireland")
    # The SIEM's old token is replaced on day 9 and revoked.
    siem_uid, siem_login = org["siem"][0], org["siem"][1]
    log(day(9) + timedelta(hours=11), admins[0], "system.api_token.revoke", ip="203.0.113.20", asn=64501,
        org_name="Acme Office", country="Ireland", target=[{"id": "00T1SIEMOLDTOKEN001", "type": "Token",
                                                             "displayName": "siem (old)"}])
    attacks = []

    def attack(name, detector, account, made):
        for e in made:
            e["_attack"] = name
        attacks.append({"name": name, "detector": detector, "account": account, "ids": [e["uuid"] for e in made]})

    a = START + timedelta(days=ATTACK_DAY)
    prov = (org["provisioner"][0], org["provisioner"][1])
    token = org["provisioner"][2]
    attack("token from a new network", "key-new-network", prov[0],
           [log(a + timedelta(hours=9, seconds=s), prov, "user.read", token=token, ip="185.220.101.7", asn=208294,
                org_name="Anonymous VPN", country="Netherlands") for s in (0, 30, 60)])
    attack("privilege granted with the token", "iam-persistence", prov[0],
           [log(a + timedelta(hours=9, minutes=5), prov, "user.account.privilege.grant", token=token,
                ip=org["provisioner"][3] % 3, asn=15169, org_name="Google LLC", country="United States",
                target=[{"id": "00u1attacker0000001", "type": "User"}])])
    attack("log stream deactivated", "audit-log-tampering", prov[0],
           [log(a + timedelta(hours=9, minutes=8), prov, "system.log_stream.lifecycle.deactivate", token=token,
                ip=org["provisioner"][3] % 3, asn=15169, org_name="Google LLC", country="United States",
                target=[{"id": "0oa1logstream000001", "type": "LogStream"}])])
    attack("revoked token used", "revoked-key-use", siem_uid,
           [log(a + timedelta(days=1, hours=2), (siem_uid, siem_login), "system.log.read", token="00T1SIEMOLDTOKEN001",
                ip="198.51.100.66", asn=64999, org_name="Unknown Hosting", country="Romania")])
    attack("admin password guessing", "failed-auth-burst", admins[1][0],
           [log(a + timedelta(days=2, hours=3, seconds=15 * n), admins[1], "user.session.start", result="FAILURE",
                ip="198.51.100.66", asn=64999, org_name="Unknown Hosting", country="Romania",
                reason="INVALID_CREDENTIALS") for n in range(12)])
    attack("denied admin calls", "denied-burst", prov[0],
           [log(a + timedelta(days=2, hours=6, seconds=10 * n), prov, "user.lifecycle.delete.initiated",
                result="DENY", token=token, ip=org["provisioner"][3] % 3, asn=15169, org_name="Google LLC",
                country="United States", reason="insufficient permissions") for n in range(20)])
    events.sort(key=lambda e: e["published"])
    return events, attacks


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rng = random.Random(seed)
    import os

    os.makedirs(os.path.join(out, "cloudtrail"), exist_ok=True)
    calls, attacks, actors = aws_scenario(rng)
    ids = {id(c): event_id(rng) for c in calls}
    by_day = {}
    for c in calls:
        by_day.setdefault(c.t.strftime("%Y%m%d"), []).append(cloudtrail(c, ids[id(c)]))
    for stamp, records in by_day.items():
        name = "%s_CloudTrail_eu-west-1_%sT0000Z_scenario.json.gz" % (ACCOUNT_ID, stamp)
        with gzip.open(os.path.join(out, "cloudtrail", name), "wt") as f:
            json.dump({"Records": records}, f)
    with open(os.path.join(out, "ocsf.jsonl"), "w") as f:
        for c in calls:
            f.write(json.dumps({k: v for k, v in ocsf(c, ids[id(c)]).items() if v is not None}) + "\n")
    with open(os.path.join(out, "history.jsonl"), "w") as f:
        for c in calls:
            if not c.attack:
                f.write(json.dumps(cloudtrail(c, ids[id(c)])) + "\n")
    catalogue = []
    for name, tactic, expect, made in techniques(actors):
        records = []
        for n, c in enumerate(made):
            if c.op == "CreateAccessKey":
                c.response = {"accessKey": {"accessKeyId": "AKIA2TECHNIQUEKEY%03d" % n, "status": "Active",
                                            "userName": c.params["userName"]}}
            records.append(cloudtrail(c, "tech-%s-%02d" % (name, n)))
        catalogue.append({"name": name, "tactic": tactic, "expect": expect, "records": records})
    with open(os.path.join(out, "techniques.json"), "w") as f:
        json.dump(catalogue, f, indent=1)
    okta_events, okta_attacks = okta_scenario(rng)
    with open(os.path.join(out, "okta.jsonl"), "w") as f:
        for e in okta_events:
            e.pop("_attack")
            f.write(json.dumps(e) + "\n")

    aws_accounts = {identity(c)["arn"] if c.who["kind"] != "role" else c.who["name"] for c in calls if not c.attack}
    okta_accounts = {e["actor"]["id"] for e in okta_events}
    aws_labels = [{"name": x["name"], "detector": x["detector"], "account": x["account"],
                   "ids": [ids[id(c)] for c in x["calls"]]} for x in attacks]
    labels = {"seed": seed, "start": iso(START), "days": DAYS, "warmup_days": WARMUP_DAYS,
              "cloudtrail": {"attacks": aws_labels, "account_days": len(aws_accounts) * (DAYS - WARMUP_DAYS)},
              "ocsf": {"attacks": aws_labels, "account_days": len(aws_accounts) * (DAYS - WARMUP_DAYS)},
              "okta": {"attacks": okta_attacks, "account_days": len(okta_accounts) * (DAYS - WARMUP_DAYS)}}
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1)
    print("%d AWS calls (%d attacks), %d Okta events (%d attacks)" % (len(calls), len(attacks), len(okta_events),
                                                                     len(okta_attacks)))


if __name__ == "__main__":
    main()
