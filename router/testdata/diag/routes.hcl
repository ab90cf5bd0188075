input "feed" "in" {}
output "capture" "a" {}
route "unknown_output" {
  to = [output.capture.b, output.archive.a, "a", output.capture.a]
}
route "no_target" {
  when = true
}
route "both" {
  to   = [output.capture.a]
  drop = true
}
route "bad_when" {
  when = hots == "x" || severity <= "loud"
  to   = [output.capture.a]
}
unmatched = [output.nothing.here]
