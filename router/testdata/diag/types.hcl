memory_limit = "1MiB"
shutdown_timeout = "soon"
input "feed" "in" {
  fail = "maybe"
}
output "capture" "a" {
  size = "12 parsecs"
  queue {
    max_events = -1
    max_size   = "lots"
    when_full  = "explode"
    type       = "tape"
  }
  batch {
    max_wait = "-1s"
  }
  retry {
    initial = "1s"
    max     = "10ms"
  }
}
spool {
  fsync = "sometimes"
}
admin {
  listen = "nocolon"
}
route "all" {
  to = [output.capture.a]
}
