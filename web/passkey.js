// The passkey callbacks the SDK calls (one touch per ceremony). No crypto here: the SDK hands
// over webauthn-rs's JSON options (binary fields base64url), this file turns them into what
// navigator.credentials expects (ArrayBuffers) and the browser's answer back into JSON.

function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const bin = atob(padded);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// webauthn-rs writes absent options as null; the WebAuthn dictionaries reject null for their
// enum members, so nulls are dropped.
function dropNulls(value) {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== null && v !== undefined) out[k] = dropNulls(v);
    }
    return out;
  }
  return value;
}

function credentialList(list) {
  return (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
}

function creationOptions(json) {
  const pk = dropNulls(JSON.parse(json).publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user = { ...pk.user, id: fromB64url(pk.user.id) };
  if (pk.excludeCredentials) pk.excludeCredentials = credentialList(pk.excludeCredentials);
  return { publicKey: pk };
}

function requestOptions(json) {
  const parsed = dropNulls(JSON.parse(json));
  const pk = parsed.publicKey;
  pk.challenge = fromB64url(pk.challenge);
  if (pk.allowCredentials) pk.allowCredentials = credentialList(pk.allowCredentials);
  const options = { publicKey: pk };
  if (parsed.mediation) options.mediation = parsed.mediation;
  return options;
}

function passkeyError(what, e) {
  // NotAllowedError: the customer dismissed the prompt or no passkey matched.
  return new Error(`${what}: ${e && e.name ? e.name : "Error"}: ${e && e.message ? e.message : e}`);
}

/** The `Passkey` object the SDK's DlockerClient takes. */
export const passkey = {
  async create(optionsJson) {
    let cred;
    try {
      cred = await navigator.credentials.create(creationOptions(optionsJson));
    } catch (e) {
      throw passkeyError("creating your passkey", e);
    }
    const r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: typeof r.getTransports === "function" ? r.getTransports() : undefined,
      },
      extensions: {},
    });
  },

  async get(optionsJson) {
    let cred;
    try {
      cred = await navigator.credentials.get(requestOptions(optionsJson));
    } catch (e) {
      throw passkeyError("using your passkey", e);
    }
    const r = cred.response;
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
      extensions: {},
    });
  },
};
