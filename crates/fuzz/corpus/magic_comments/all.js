// @timeout 5000
// @token s3cret
// @cors *
// @concurrent false
export default () => 1
