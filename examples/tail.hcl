# Tail application logs: nginx access logs and a Java application's log
# with multi-line stack traces, archived by stream and hour.
#
#   sluice run -config examples/tail.hcl
#
# Rotation by logrotate works either way, "create" (rename) or
# "copytruncate"; keep rotated names out of `paths` (here the patterns end
# in .log and rotated files in .log.1, .log.2.gz, ...). Positions are kept
# in data/state/input/NAME/positions.json, so a restart resumes where the
# previous run stopped. See docs/tail-input.md.

data_dir = "data"

admin {
  listen = "127.0.0.1:9514"
}

input "tail" "nginx" {
  paths    = ["/var/log/nginx/*.log"]
  exclude  = ["/var/log/nginx/error.log"]
  stream   = "nginx_access"
  start_at = "end" # on first start, skip what the files already hold
}

input "tail" "app" {
  paths  = ["/var/log/myapp/**/*.log"]
  stream = "app"

  # A record starts with a timestamp; stack trace lines do not.
  multiline {
    start     = "^\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}:\\d{2}"
    max_bytes = "1MiB"
    timeout   = "2s"
  }
}

output "archive" "files" {
  path        = "data/archive/{stream}/%Y/%m/%d/%H.log.gz"
  compression = "gzip"
  format      = "raw"
}

route "everything" {
  to = [output.archive.files]
}
