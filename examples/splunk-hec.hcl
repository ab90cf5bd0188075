# Send syslog to Splunk's HTTP Event Collector, one event envelope per line,
# with a durable disk queue so an indexer outage loses nothing.
#
#   HEC_URL=https://splunk.example:8088/services/collector/event HEC_TOKEN=… \
#     sluice run -config examples/splunk-hec.hcl

data_dir = "data"

admin {
  listen = "127.0.0.1:9514"
}

input "syslog" "edge" {
  listen = ["udp://127.0.0.1:5514", "tcp://127.0.0.1:5514"]
  stream = "syslog"
}

output "http" "splunk" {
  url = env("HEC_URL", "https://127.0.0.1:8088/services/collector/event")
  headers = {
    Authorization = "Splunk ${env("HEC_TOKEN", "00000000-0000-0000-0000-000000000000")}"
  }
  encoding    = "splunk_hec"
  compression = "gzip"

  splunk_hec {
    host       = "{host}"
    source     = "syslog:{app}"
    sourcetype = "syslog"
    index      = env("HEC_INDEX", "main")
    event      = "raw" # the frame as received; or "message", or "json"
  }

  # Splunk's default certificate is self-signed: give its CA here.
  # tls {
  #   ca_file     = "/etc/sluice/splunk-ca.pem"
  #   server_name = "splunk.example"
  # }

  dead_letter_file = "data/dead-letter/splunk.jsonl"

  queue {
    type     = "disk"
    max_size = "2GiB"
  }
  batch {
    max_events = 1000
    max_wait   = "500ms"
  }
}

# Everything but debug chatter.
route "splunk" {
  when = severity <= "info"
  to   = [output.http.splunk]
}
