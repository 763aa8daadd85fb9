// Validates Kubernetes custom resources against the published schemas of their CRDs.
//
//   node validate.mjs < manifests.json
//
// Standard input: a JSON array of objects (Istio and Prometheus Operator kinds). Standard output:
// a JSON array with one entry per object, {apiVersion, kind, name, errors}, where errors lists
// "path: message" strings (empty when the object is valid). Exit status: 0 when every object is
// valid, 1 when one is not, 2 when the input cannot be read or names a kind without a schema.
//
// The schemas come from @kubernetes-models/istio and @kubernetes-models/prometheus-operator,
// which are ES modules: they resolve only from a script inside this folder (NODE_PATH is ignored).
//
// Unknown fields: the packages' validators type-check the declared fields but let any other field
// through, while the API server (kubectl's default strict field validation) rejects a field that a
// CRD's structural schema does not declare, except under x-kubernetes-preserve-unknown-fields. So
// the validator runs on a proxy that records which keys it reads: it reads every declared property
// of an object schema, all keys of a map schema, and nothing of a free-form (preserved) object.
// A key of an object whose schema was read but that was never read itself is an unknown field.

const PACKAGES = {
  "networking.istio.io": "@kubernetes-models/istio",
  "security.istio.io": "@kubernetes-models/istio",
  "telemetry.istio.io": "@kubernetes-models/istio",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

// The class of a kind, e.g. @kubernetes-models/istio/networking.istio.io/v1/VirtualService.
async function modelOf(apiVersion, kind) {
  const [group, version] = String(apiVersion).split("/");
  const pkg = PACKAGES[group];
  if (!pkg || !version || !/^[A-Za-z]+$/.test(kind)) {
    throw new Error(`no published schema for ${apiVersion} ${kind}`);
  }
  let module;
  try {
    module = await import(`${pkg}/${group}/${version}/${kind}`);
  } catch (error) {
    throw new Error(`no published schema for ${apiVersion} ${kind} (${error.code || error})`);
  }
  return module[kind];
}

const ENUMERATED = Symbol("enumerated");

// A deep proxy of value that records, per object, the keys the validator looked at.
function tracked(value, reads, proxies) {
  if (value === null || typeof value !== "object") return value;
  if (proxies.has(value)) return proxies.get(value);
  const keys = new Set();
  reads.set(value, keys);
  const note = (key) => typeof key === "string" && keys.add(key);
  const proxy = new Proxy(value, {
    get(target, key) {
      note(key);
      return tracked(Reflect.get(target, key), reads, proxies);
    },
    has(target, key) {
      note(key);
      return Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      note(key);
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
    ownKeys(target) {
      keys.add(ENUMERATED);
      return Reflect.ownKeys(target);
    },
  });
  proxies.set(value, proxy);
  return proxy;
}

// Keys the schema does not declare, as "path: unknown field" strings.
function unknownFields(value, reads, path = "") {
  if (value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => unknownFields(item, reads, `${path}/${index}`));
  }
  const keys = reads.get(value);
  // Never looked into: a free-form object (x-kubernetes-preserve-unknown-fields).
  if (!keys || keys.size === 0) return [];
  return Object.keys(value).flatMap((key) =>
    keys.has(key) || keys.has(ENUMERATED)
      ? unknownFields(value[key], reads, `${path}/${key}`)
      : [`${path}/${key}: unknown field, not in the schema`],
  );
}

function describe(error) {
  // ajv errors: the JSON pointer of the value, the message, and what the keyword refers to.
  const details = error.errors || [];
  if (!details.length) return [String(error.message || error)];
  return details.map((item) => {
    const path = item.instancePath || "/";
    const extra = item.params?.additionalProperty
      ? ` (${item.params.additionalProperty})`
      : item.params?.allowedValues
        ? ` (${item.params.allowedValues.join(", ")})`
        : "";
    return `${path}: ${item.message}${extra}`;
  });
}

async function main() {
  const objects = JSON.parse(await readStdin());
  if (!Array.isArray(objects)) throw new Error("standard input must be a JSON array of objects");
  const results = [];
  for (const object of objects) {
    const Model = await modelOf(object.apiVersion, object.kind);
    const reads = new WeakMap();
    let errors = [];
    try {
      // The model's validate() runs the schema's validator on `this`: here the tracked object
      // exactly as rendered (a new Model(object) would copy it and set the class's apiVersion).
      Model.prototype.validate.call(tracked(object, reads, new WeakMap()));
    } catch (error) {
      errors = describe(error);
    }
    errors = errors.concat(unknownFields(object, reads));
    results.push({
      apiVersion: object.apiVersion,
      kind: object.kind,
      name: object.metadata?.name ?? "",
      errors,
    });
  }
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  process.exitCode = results.some((r) => r.errors.length) ? 1 : 0;
}

main().catch((error) => {
  process.stderr.write(`error: ${error.message || error}\n`);
  process.exitCode = 2;
});
