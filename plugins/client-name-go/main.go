// client-name-go: puts the calling application into its access token, in Go.
//
// A port of the C plugin client-name-c (itself the Rust plugin client-claims
// without its metadata copying), written against the bindings that
// `wit-bindgen go` generates from wit/plugin.wit. It exports only the
// credentials-exchange world and sets two access-token claims:
//
//	{namespace}client_name      the client's display name
//	{namespace}client_app_type  "spa", "regular_web", "native" or "machine"
//
// namespace is read with the host import config("namespace"). Without it (or
// when it is empty) the plugin panics with
// `client-name-go: config key "namespace" is required`: the Go runtime writes
// the message and a stack trace to stderr, and the call traps.
//
// wit-bindgen lays the program out as the module wit_component: generated
// packages beside a package export_wit_world that must define one function
// per export. build.sh copies this file there, so its package name is not
// main. Memory needs no care here: the generated glue copies the event into
// Go values, and pins what it returns until the host has read it.
package export_wit_world

import (
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	host "wit_component/tessera_plugin_host"
	types "wit_component/tessera_plugin_types"
)

// Prefix of every message, like the Rust plugin's "client-claims:".
const plugin = "client-name-go"

// OnCredentialsExchange is the export of the credentials-exchange world.
// It never denies.
func OnCredentialsExchange(event types.CredentialsExchangeEvent) witTypes.Result[types.Changes, types.Denial] {
	client := event.Client
	namespace := host.Config("namespace").SomeOr("")
	if namespace == "" {
		fail(`config key "namespace" is required`)
	}

	changes := types.Changes{
		AccessTokenClaims: types.Metadata{
			{F0: namespace + "client_name", F1: types.MakeValueText(client.Name)},
			{F0: namespace + "client_app_type", F1: types.MakeValueText(appTypeName(client.AppType))},
		},
	}
	host.Log(types.LogLevel_Debug, fmt.Sprintf(
		"%s: client %q: set client_name, client_app_type under %s", plugin, client.Id, namespace))
	return witTypes.Ok[types.Changes, types.Denial](changes)
}

// appTypeName is the claim value for an app type, as the Rust SDK spells it.
func appTypeName(appType types.AppType) string {
	switch appType {
	case types.AppType_Spa:
		return "spa"
	case types.AppType_RegularWeb:
		return "regular_web"
	case types.AppType_Native:
		return "native"
	case types.AppType_Machine:
		return "machine"
	}
	fail(fmt.Sprintf("unknown app type %d", appType)) // the canonical ABI rejects it first
	return ""
}

// fail ends the call: the runtime prints "panic: client-name-go: message"
// and a stack trace to stderr, then the component traps. (os.Exit would
// also stop it, but the host then reports an exit, not a trap.)
func fail(message string) {
	panic(plugin + ": " + message)
}
