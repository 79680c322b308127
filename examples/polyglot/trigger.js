// Trigger a Podium workflow and wait for its end, in Node.js:
//   node trigger.js WORKFLOW VERSION 'INPUT-JSON'   (PODIUM_BOOTSTRAP_SERVERS)
// publishes `podium.workflow.triggered` on podium.triggers (keyed by a new workflow id),
// reads podium.workflows until that workflow's `podium.workflow.completed` or `.failed`,
// prints its data as JSON on stdout; exit 0 if it Succeeded, 1 otherwise (2: no end in
// PODIUM_WAIT_SECONDS, default 60).
"use strict";
const crypto = require("node:crypto");
const { Kafka, logLevel } = require("kafkajs");
const wire = require("./wire");

async function main() {
  const [workflow, version, input = "{}"] = process.argv.slice(2);
  if (!workflow || !version) {
    console.error("usage: node trigger.js WORKFLOW VERSION 'INPUT-JSON'");
    process.exit(2);
  }
  const kafka = new Kafka({
    clientId: "podium-trigger-js",
    brokers: (process.env.PODIUM_BOOTSTRAP_SERVERS || "localhost:9092").split(","),
    logLevel: logLevel.WARN,
  });
  const workflowId = crypto.randomUUID().replaceAll("-", "");
  const consumer = kafka.consumer({ groupId: `podium-trigger-js-${workflowId}`, maxWaitTimeInMs: 5, sessionTimeout: 3000, heartbeatInterval: 500 });
  await consumer.connect();
  // from the beginning: the end cannot slip past, whenever the group joins
  await consumer.subscribe({ topic: wire.WORKFLOWS, fromBeginning: true });
  const timer = setTimeout(() => {
    console.error(`no end of workflow ${workflowId} in time`);
    process.exit(2);
  }, Number(process.env.PODIUM_WAIT_SECONDS || 60) * 1000);
  const ended = new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        let event;
        try { event = wire.read(message); } catch { return; }
        if (event.attrs.workflowid !== workflowId) return;
        if (event.attrs.type === "podium.workflow.completed" || event.attrs.type === "podium.workflow.failed") {
          resolve(event);
        }
      },
    });
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const data = { workflow, version: Number(version), input: JSON.parse(input), mode: "orchestration" };
  await producer.send({
    topic: wire.TRIGGERS, acks: -1,
    messages: [wire.write({ source: "podium/trigger-js", type: "podium.workflow.triggered", workflowid: workflowId, correlationid: workflowId }, data)],
  });
  console.error(`triggered ${workflow} v${version}: ${workflowId}`);
  const event = await ended;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({ workflow_id: workflowId, ...event.data }) + "\n");
  await producer.disconnect();
  await consumer.disconnect();
  process.exit(event.data.state === "Succeeded" ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
