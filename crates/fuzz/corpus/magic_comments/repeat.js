// @timeout 300000
// @timeout 1
