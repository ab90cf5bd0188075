bogus = 1
input "feed" "in" {
  colour = "red"
}
input "nosuch" "x" {}
output "capture" "a" {
  queue {
    kind = "memory"
  }
}
widget "w" {}
route "all" {
  to = [output.capture.a]
}
