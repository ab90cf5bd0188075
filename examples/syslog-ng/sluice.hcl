# The Sluice equivalent of syslog-ng.conf in this directory; the README's
# "Migrating from syslog-ng" section walks through it line by line.
# Hosts, ports, certificates and CAs come from the environment so the same
# file runs in the end-to-end test on unprivileged ports
# (integration/migration_test.go).

admin {
  listen = "127.0.0.1:9514"         # /metrics, /readyz, POST /reload
}

# source s_net: network() on 514, UDP and TCP. Framing (newline or octet
# counting) and format (RFC 3164 or 5424) are detected per message, and the
# received bytes are kept for raw forwarding (flags(store-raw-message)).
input "syslog" "net" {
  listen = [
    "udp://0.0.0.0:${env("SYSLOG_PORT", "514")}",
    "tcp://0.0.0.0:${env("SYSLOG_PORT", "514")}",
  ]
}

# source s_tls: syslog() over TLS on 6514 (RFC 5425). With client_ca_file
# set, clients must present a certificate signed by it
# (peer-verify(required-trusted)); all three files are reloaded when they
# change, so renewing them needs no restart. Routes below take events from
# both inputs, as the log paths name both sources.
input "syslog" "tls" {
  listen = ["tls://0.0.0.0:${env("TLS_PORT", "6514")}"]
  tls {
    cert_file      = env("TLS_CERT", "/etc/sluice/server.pem")
    key_file       = env("TLS_KEY", "/etc/sluice/server.key")
    client_ca_file = env("TLS_CLIENT_CA", "/etc/sluice/clients-ca.pem")
  }
}

# destination d_siem: syslog() over TLS, server certificate verified
# against the CA (peer-verify(required-trusted)).
output "syslog" "siem" {
  targets = ["tls://${env("SIEM_HOST", "siem.example.net")}:${env("SIEM_PORT", "6514")}"]
  format  = "rfc5424"
  tls {
    ca_file = env("SIEM_CA", "/etc/sluice/siem-ca.pem")
  }
}

# destination d_central: syslog() over TCP, octet counting, the message as
# received (template("${RAWMSG}")).
output "syslog" "central" {
  targets = ["tcp://${env("CENTRAL_HOST", "logs.example.net")}:${env("CENTRAL_PORT", "601")}"]
  format  = "raw"
}

# destination d_local: one file per day and host, as received. Sluice
# compresses it (drop the next line for plain files). A relative path is
# relative to the working directory (/var/lib/sluice under the systemd unit).
output "archive" "local" {
  path        = "archive/%Y/%m/%d/{host}.log.gz"
  compression = "gzip"
  format      = "raw"
}

# log { filter(f_security); destination(d_siem); } — and go on to the next
# paths, as syslog-ng does without flags(final).
route "security" {
  when     = contains(["auth", "authpriv"], facility) || regexmatch(app, "^(sshd|sudo)$")
  to       = [output.syslog.siem]
  continue = true
}

# log { filter(f_noisy); flags(final); } — stop here, deliver nowhere.
route "noisy" {
  when = host == "noisy-box" && severity >= "info"
  drop = true
}

# log { destination(d_central); destination(d_local); }
route "everything" {
  to = [output.syslog.central, output.archive.local]
}
