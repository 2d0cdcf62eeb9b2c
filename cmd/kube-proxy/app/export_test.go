package app

// Unexported config helpers, exposed to the package app_test tests that compare them with
// upstream kube-proxy.
var (
	DecodeConfig   = decodeConfig
	EncodeConfig   = encodeConfig
	ValidateConfig = validateConfig
)
