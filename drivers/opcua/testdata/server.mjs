// A node-opcua server for wellgate's interop tests (drivers/opcua/interop_test.go): one
// Basic256Sha256 SignAndEncrypt endpoint, user "field" with password "wellsite" (no anonymous
// access), MaxNodesPerRead 5, and a small skid under Objects. Environment: PORT (listen on
// 127.0.0.1), PKI_DIR (its certificate stores; unknown client certificates are accepted into
// them). It prints "ready SHA256:<fingerprint of its certificate>" once it serves, and runs
// until killed. Run it with node --input-type=module from the folder holding node_modules.
import { createHash } from "node:crypto";
import { OPCUAServer } from "node-opcua-server";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { Variant, DataType, VariantArrayType } from "node-opcua-variant";
import { MessageSecurityMode } from "node-opcua-service-secure-channel";
import { SecurityPolicy } from "node-opcua-secure-channel";

const port = Number(process.env.PORT);
const pki = process.env.PKI_DIR;

const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: pki + "/server",
    automaticallyAcceptUnknownCertificate: true,
});
const userCertificateManager = new OPCUACertificateManager({
    rootFolder: pki + "/user",
    automaticallyAcceptUnknownCertificate: true,
});
await serverCertificateManager.initialize();
await userCertificateManager.initialize();

const server = new OPCUAServer({
    port,
    host: "127.0.0.1",
    securityPolicies: [SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: false,
    userManager: { isValidUser: (user, password) => user === "field" && password === "wellsite" },
    serverCertificateManager,
    userCertificateManager,
    serverCapabilities: { operationLimits: { maxNodesPerRead: 5, maxNodesPerBrowse: 5, maxMonitoredItemsPerCall: 4 } },
    buildInfo: { productName: "wellgate interop peer" },
});
await server.initialize();

const addressSpace = server.engine.addressSpace;
const ns = addressSpace.registerNamespace("urn:wellgate:interop");
const skid = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Skid" });
const rw = { accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" };
const ro = { accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" };
const variable = (name, dataType, value, access, arrayType) =>
    ns.addVariable({
        componentOf: skid,
        browseName: name,
        nodeId: "s=Skid." + name,
        dataType,
        ...access,
        value: new Variant({ dataType: DataType[dataType], value, arrayType: arrayType ?? VariantArrayType.Scalar }),
    });

variable("Level", "Double", 1.5, rw);
variable("Run", "Boolean", false, rw);
variable("Name", "String", "separator", ro);
variable("Total", "UInt64", [1, 5], ro); // [high, low]: 2^32 + 5
variable("Stamp", "DateTime", new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), ro);
const count = variable("Count", "Int32", 0, ro);
const wobble = variable("Wobble", "Double", 10, ro);

let n = 0;
setInterval(() => {
    n++;
    count.setValueFromSource(new Variant({ dataType: DataType.Int32, value: n }));
    wobble.setValueFromSource(new Variant({ dataType: DataType.Double, value: n % 2 ? 10.1 : 10 }));
}, 50);

await server.start();
const der = server.getCertificate();
console.log("ready SHA256:" + createHash("sha256").update(der).digest("hex"));
