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
output "capture" "b" {
  queue {
    type          = "memory"
    replay        = "live_first"
    backlog_share = 0.5
  }
}
output "capture" "c" {
  queue {
    replay        = "newest"
    backlog_share = 1.5
  }
}
output "capture" "d" {
  queue {
    backlog_share = 0.5
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
