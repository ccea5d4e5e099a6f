// Redeems an ID-JAG at an RFC 7523 token endpoint with the MCP TypeScript SDK client and prints
// the token response as one line of JSON on stdout.
//
// Input comes from the environment so the client secret and the assertion stay out of the
// process list:
//   XAA_TOKEN_ENDPOINT  token endpoint URL (https, or http on a loopback host)
//   XAA_CLIENT_ID       client id at the authorization server
//   XAA_CLIENT_SECRET   client secret
//   XAA_ASSERTION       the ID-JAG
//   XAA_AUTH_METHOD     optional: client_secret_basic (the SDK default) or client_secret_post
//
// Exit codes: 0 on success, 1 when the exchange fails, 2 when an input is missing.

import { exchangeJwtAuthGrant } from '@modelcontextprotocol/client';

const REQUIRED = ['XAA_TOKEN_ENDPOINT', 'XAA_CLIENT_ID', 'XAA_CLIENT_SECRET', 'XAA_ASSERTION'];
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post'];

const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length > 0) {
    console.error(`redeem.mjs: missing environment variables: ${missing.join(', ')}`);
    process.exit(2);
}
const authMethod = process.env.XAA_AUTH_METHOD || 'client_secret_basic';
if (!AUTH_METHODS.includes(authMethod)) {
    console.error(
        `redeem.mjs: invalid XAA_AUTH_METHOD '${authMethod}', expected one of ${AUTH_METHODS.join(', ')}`
    );
    process.exit(2);
}

try {
    const tokens = await exchangeJwtAuthGrant({
        tokenEndpoint: process.env.XAA_TOKEN_ENDPOINT,
        jwtAuthGrant: process.env.XAA_ASSERTION,
        clientId: process.env.XAA_CLIENT_ID,
        clientSecret: process.env.XAA_CLIENT_SECRET,
        authMethod,
        // Node's built-in fetch, which is also the SDK default, passed explicitly to show the transport.
        fetchFn: globalThis.fetch,
    });
    process.stdout.write(`${JSON.stringify(tokens)}\n`);
} catch (error) {
    // Node's fetch reports connection errors as "fetch failed" and keeps the reason in `cause`.
    const cause = error?.cause ? ` (${error.cause.message ?? error.cause})` : '';
    console.error(`redeem.mjs: token exchange failed: ${error?.message ?? error}${cause}`);
    process.exit(1);
}
