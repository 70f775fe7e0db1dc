/**
 * @file Installs `fetch` in a component, over the host's
 * `tessera:egress/http@0.1.0` (see `fetch.js`). The entry module imports it
 * before the plugin, so the plugin finds `fetch` as a global, as in Auth0.
 */

import { send } from "tessera:egress/http@0.1.0";

import { createFetch } from "./fetch.js";

globalThis.fetch = createFetch(send);
