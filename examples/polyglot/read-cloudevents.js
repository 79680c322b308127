// Read Podium's records with the official CloudEvents SDK for JavaScript (`cloudevents`,
// its Kafka binding), nothing of Podium's:
//   node read-cloudevents.js WORKFLOW-ID TOPIC... [--until TYPE[:TASK-ID]]...
// reads the topics from the beginning, turns every record of that workflow into a
// CloudEvent with `Kafka.toEvent`, checks it against the CloudEvents 1.0 spec
// (`event.validate()`), prints each as a JSON line on stdout; stops once it has seen one
// event per `--until` (exit 0), or after PODIUM_WAIT_SECONDS (default 30; exit 2).
"use strict";
const { Kafka: KafkaClient, logLevel } = require("kafkajs");
const { Kafka } = require("cloudevents");

async function main() {
  const args = process.argv.slice(2);
  const workflowId = args.shift();
  const topics = [];
  const until = new Set();
  while (args.length) {
    const arg = args.shift();
    if (arg === "--until") until.add(args.shift());
    else topics.push(arg);
  }
  const kafka = new KafkaClient({
    clientId: "podium-read-cloudevents",
    brokers: (process.env.PODIUM_BOOTSTRAP_SERVERS || "localhost:9092").split(","),
    logLevel: logLevel.WARN,
  });
  const consumer = kafka.consumer({
    groupId: `podium-read-cloudevents-${process.pid}-${Date.now()}`,
    maxWaitTimeInMs: 5, sessionTimeout: 3000, heartbeatInterval: 500,
  });
  const timer = setTimeout(() => {
    console.error(`still waiting for: ${[...until].join(", ")}`);
    process.exit(2);
  }, Number(process.env.PODIUM_WAIT_SECONDS || 30) * 1000);
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const headers = {};
      for (const [name, value] of Object.entries(message.headers || {})) headers[name] = value.toString("utf8");
      const event = Kafka.toEvent({ key: message.key.toString("utf8"), value: message.value.toString("utf8"), headers });
      if (event.workflowid !== workflowId) return;
      event.validate(); // throws a ValidationError naming what breaks the spec
      process.stdout.write(JSON.stringify({ topic, partition, ...event.toJSON() }) + "\n");
      until.delete(event.type);
      until.delete(`${event.type}:${event.taskid}`);
      if (until.size === 0) {
        clearTimeout(timer);
        setImmediate(async () => {
          await consumer.disconnect();
          process.exit(0);
        });
      }
    },
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
