input "syslog" "edge" {
  listen            = ["udp://127.0.0.1:5514", "carrier-pigeon://x"]
  max_message_bytes = -5
  idle_timeout      = "whenever"
}
output "archive" "cold" {
  path        = "archive/{streem}/%Q.log"
  compression = "zstd"
  level       = 12
  format      = "xml"
  timezone    = "Mars/Olympus"
}
route "r" {
  when = regexmatch(app, "([") || cidrcontains("10.0.0.0/33", origin) || facility == "lunar"
  to   = [output.archive.cold]
}
output "archive" "cold_copy" {
  path = "./archive/../archive/{stream}.log"
}
output "archive" "cold_again" {
  path = "archive/{stream}.log"
}
admin {
  listen = "127.0.0.1:notaport"
}
