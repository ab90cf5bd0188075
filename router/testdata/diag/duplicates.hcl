input "feed" "in" {}
input "feed" "in" {}
output "capture" "a" {}
output "capture" "a" {}
route "r" {
  to = [output.capture.a]
}
route "r" {
  to = [output.capture.a]
}
