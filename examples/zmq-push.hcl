# Fan out over ZeroMQ: receive syslog, PUSH every event to a pool of
# collectors (libzmq round-robins across the ones that keep up), and PUB a
# live copy on loopback for `sluice tap`.
#
#   sluice run -config examples/zmq-push.hcl
#   sluice run -config examples/zmq-collector.hcl   # a collector (another terminal)
#   logger -n 127.0.0.1 -P 5514 --tcp --octet-count --rfc5424 -p user.err "hello"
#   sluice tap -connect tcp://127.0.0.1:5558 -when 'severity <= "err"' -format json
#
# Collectors that are down or slow hold nothing up but this output: its disk
# queue keeps the events until a collector takes them. docs/zmq.md says what
# ZeroMQ itself can lose and how to set up CURVE.

data_dir = "data"

admin {
  listen = "127.0.0.1:9514"
}

input "syslog" "local" {
  listen = ["udp://127.0.0.1:5514", "tcp://127.0.0.1:5514"]
}

output "zmq" "collectors" {
  socket  = "push"
  connect = [env("COLLECTOR_1", "tcp://127.0.0.1:5557"), env("COLLECTOR_2", "tcp://127.0.0.1:5567")]
  format  = "json" # a Sluice collector (input format "json") gets every field back

  send_hwm     = 1000 # messages libzmq queues per collector
  send_timeout = "5s" # no collector with room for this long: retry later, events stay queued

  # curve {                                   # encrypt and authenticate (sluice keygen)
  #   server_key      = env("COLLECTOR_PUBLIC_KEY")
  #   secret_key_file = "/etc/sluice/zmq-client.key"
  # }

  queue {
    type     = "disk"
    max_size = "1GiB"
  }
}

output "zmq" "tap" {
  socket = "pub"
  bind   = "tcp://127.0.0.1:5558"
  format = "json"
  topic  = "{stream}.{severity}" # sluice tap -topic syslog.err
  queue {
    type = "memory" # a live view: nothing to keep across restarts
  }
}

route "everything" {
  to = [output.zmq.collectors, output.zmq.tap]
}
