# Forward everything to an NDJSON endpoint (a SIEM, Vector, Logstash's http
# input, a Loki/Elastic ingest proxy …), gzip-compressed, and keep a local
# archive of what the endpoint refuses.
#
#   INGEST_URL=https://siem.example/ingest INGEST_TOKEN=… sluice run -config examples/http-ndjson.hcl
#
# Without the variables it posts to http://127.0.0.1:8080/ingest.

data_dir = "data"

admin {
  listen = "127.0.0.1:9514"
}

input "syslog" "local" {
  listen = ["udp://127.0.0.1:5514", "tcp://127.0.0.1:5514"]
}

output "http" "siem" {
  url          = env("INGEST_URL", "http://127.0.0.1:8080/ingest")
  bearer_token = env("INGEST_TOKEN", "dev-token")
  headers = {
    X-Source-Cluster = env("CLUSTER", "dev")
  }
  encoding         = "ndjson" # one JSON event per line (the archive's JSON format)
  compression      = "gzip"   # Content-Encoding: gzip
  timeout          = "10s"
  max_body_bytes   = "4MiB" # bigger batches are split into several requests
  max_in_flight    = 1      # keeps order; more sends a batch's requests concurrently
  dead_letter_file = "data/dead-letter/siem.jsonl"

  # tls {                    # for https:// with a private CA or mutual TLS
  #   ca_file   = "/etc/sluice/ca.pem"
  #   cert_file = "/etc/sluice/client.pem"
  #   key_file  = "/etc/sluice/client.key"
  # }

  batch {
    max_events = 2000
    max_wait   = "1s"
  }
  retry {
    initial = "200ms"
    max     = "30s" # also caps what the server asks for with Retry-After
  }
}

route "all" {
  to = [output.http.siem]
}
