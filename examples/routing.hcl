# Routing by stream type, origin and content, as a central syslog receiver
# for several teams. Shows every operator and helper of the `when` language.

data_dir = "data"

spool {
  dir   = "data/spool"
  fsync = "1s"
}

input "syslog" "edge" {
  listen            = ["udp://127.0.0.1:5514", "tcp://127.0.0.1:5514"]
  stream            = "syslog"
  max_message_bytes = 131072
  idle_timeout      = "10m"
  max_connections   = 2048
}

input "syslog" "appliances" {
  listen = ["tcp://127.0.0.1:5601"]
  stream = "network"
  format = "rfc3164"
}

output "archive" "security" {
  path   = "data/archive/security/%Y/%m/%d.log.gz"
  format = "rfc5424"
  level  = 6
  queue {
    type     = "disk" # durable under spool.dir/security
    max_size = "2GiB"
    fsync    = "always"
  }
}

output "archive" "by_stream" {
  path          = "data/archive/{stream}/{host}/%Y/%m/%d/%H.log.gz"
  max_file_size = "1GiB"
}

output "archive" "debug" {
  path        = "data/debug/%Y%m%d.jsonl"
  compression = "none"
  format      = "json"
  queue {
    type       = "memory" # debug data need not survive a restart
    max_events = 10000
    when_full  = "drop_newest" # and may be shed under load
  }
}

# Authentication events, and anything at err or worse except from noisy-box.
route "security" {
  when     = contains(["auth", "authpriv"], facility) || (severity <= "err" && host != "noisy-box")
  to       = [output.archive.security]
  continue = true
}

# Health-check chatter is discarded.
route "healthchecks" {
  when = app == "haproxy" && strcontains(message, "GET /healthz")
  drop = true
}

# Our own network only, from the appliance stream.
route "network" {
  when = stream == "network" && cidrcontains("10.0.0.0/8", origin)
  to   = [output.archive.by_stream]
}

# Debug-level output of services whose name starts with "svc-".
route "debug" {
  when = severity == "debug" && startswith(app, "svc-") && !regexmatch(host, "^test-")
  to   = [output.archive.debug]
}

route "syslog" {
  when = stream == "syslog"
  to   = [output.archive.by_stream]
}

# Whatever no route took still lands somewhere.
unmatched = [output.archive.by_stream]
