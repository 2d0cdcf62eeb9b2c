package app

// The fork's config plumbing, exposed to the package app_test tests of forkconfig_test.go.
var (
	DecodeConfigWithFork = decodeConfigWithFork
	RegisterConfigz      = registerConfigz
	LogForkConfig        = logForkConfig
)
