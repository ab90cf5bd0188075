input "feed" "in" {}
output "capture" "a" {
  size = env("SLUICE_TEST_SURELY_UNSET_VAR")
}
route "all" {
  to = [output.capture.a]
}
