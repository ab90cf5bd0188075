# A collector: PULL events from Sluice forwarders (examples/zmq-push.hcl)
# and archive them. The json format carries every field across, so routes
# here see the original input, stream, origin, host, severity and time.
#
#   sluice run -config examples/zmq-collector.hcl
#
# Restarting the collector loses nothing the forwarders still queue: they
# reconnect by themselves and resend from their disk queues what libzmq did
# not take (docs/zmq.md lists what is in flight, and lost, at a crash).

data_dir = "data-collector"

admin {
  listen = "127.0.0.1:9515"
}

input "zmq" "forwarders" {
  socket            = "pull"
  bind              = "tcp://127.0.0.1:5557"
  format            = "json"
  max_message_bytes = "256KiB" # JSON carries a frame twice: >= 2.5x the forwarders' max_message_bytes
  receive_hwm       = 1000     # per forwarder: bounds memory to receive_hwm x max_message_bytes

  # curve {                                   # only forwarders with these keys get in
  #   secret_key_file      = "/etc/sluice/zmq-collector.key"
  #   authorized_keys_file = "/etc/sluice/zmq-forwarders.pub"
  # }
}

output "archive" "all" {
  path        = "data-collector/archive/{stream}/%Y/%m/%d/%H.log.gz"
  compression = "gzip"
  format      = "raw"
}

route "everything" {
  to = [output.archive.all]
}
