input "feed" "in" {
  fail = 
}
