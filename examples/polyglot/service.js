// A Podium task service in Node.js (orchestration mode): it consumes the command topics
// of its task types and answers each command with outcome CloudEvents exactly as a
// Python TaskService does (services/worker.py, services/execute.py):
//
//   - a `podium.task.started` marker first, acknowledged before the handler runs;
//   - then `podium.task.succeeded` (data.output) or `podium.task.failed` (data.error:
//     {type, message, retryable});
//   - both on `podium.tasks.<type>.outcomes`, on the partition the command came from, keyed
//     by the workflow id, ce_id `<command_id>:<started|succeeded|failed>`, the command's
//     correlation id and trace context carried on, ce_causationid = the command's ce_id;
//   - a command seen again after it finished is answered with the recorded outcome, not
//     run twice (from memory: this process's window, where Podium's worker reads its
//     outcome partitions back on assignment);
//   - the offset is committed only once the outcome is acknowledged; a record that is not
//     a valid command goes to `podium.dlq` with the reason in `podium_dlq_reason`.
//
// Run it: node service.js  (PODIUM_BOOTSTRAP_SERVERS, default localhost:9092)
"use strict";
const { Kafka, logLevel } = require("kafkajs");
const wire = require("./wire");

const NAME = process.env.PODIUM_SERVICE_NAME || "payments-node";
const SOURCE = `podium/service/${NAME}`;
const PARTITIONS = Number(process.env.PODIUM_PARTITIONS || 8);

class TaskError extends Error {
  constructor(message, { retryable = true, type = "TaskError" } = {}) {
    super(message);
    this.retryable = retryable;
    this.type = type;
  }
}

// The handlers, by task type: input in, JSON output back (the order example's payments).
const handlers = {
  "payments.charge": async (input, ctx) => {
    if (input.amount > 1000) throw new TaskError("card declined: amount over the limit", { retryable: false });
    return { charge_id: `c-${ctx.workflowId}`, amount: input.amount, by: "node" };
  },
  "payments.refund": async (input) => ({ refunded: input.charge_id }),
};

const FINISHED_WINDOW = 10000; // commands remembered for redeliveries
const finished = new Map(); // command_id -> [payload kind, data]

function outcomeOf(command, kind, extra) {
  const common = {
    workflow: command.workflow, version: command.version, command_id: command.command_id,
    task_id: command.task_id, task_type: command.task_type, attempt: command.attempt,
    compensation: command.compensation || false, mode: command.mode || "orchestration",
  };
  return [kind, { ...common, ...extra }];
}

async function run(command, workflowId) {
  const handler = handlers[command.task_type];
  if (!handler) {
    const message = `service ${NAME} has no handler for ${command.task_type}`;
    return outcomeOf(command, "failed", { error: { type: "UnknownTaskType", message, retryable: false } });
  }
  const ctx = { workflowId, taskId: command.task_id, attempt: command.attempt, idempotencyKey: command.idempotency_key };
  let timer;
  try {
    const limit = command.timeout;
    const timeout = new Promise((_, reject) => {
      if (limit) timer = setTimeout(() => reject(new TaskError(`attempt ${command.attempt} timed out after ${limit}s`, { type: "Timeout" })), limit * 1000);
    });
    const output = await Promise.race([handler(command.input, ctx), timeout]);
    return outcomeOf(command, "succeeded", { output: output === undefined ? null : output });
  } catch (err) {
    const error = err instanceof TaskError
      ? { type: err.type, message: err.message, retryable: err.retryable }
      : { type: (err && err.name) || "Error", message: String((err && err.message) || err), retryable: true };
    return outcomeOf(command, "failed", { error });
  } finally {
    clearTimeout(timer);
  }
}

async function main() {
  const kafka = new Kafka({
    clientId: NAME,
    brokers: (process.env.PODIUM_BOOTSTRAP_SERVERS || "localhost:9092").split(","),
    logLevel: logLevel.WARN,
  });
  const types = Object.keys(handlers);
  const admin = kafka.admin();
  await admin.connect();
  const wanted = [wire.DEAD_LETTER, ...types.flatMap((t) => [wire.commands(t), wire.outcomes(t)])];
  await admin.createTopics({ topics: wanted.map((topic) => ({ topic, numPartitions: PARTITIONS })) });
  await admin.disconnect();

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const consumer = kafka.consumer({
    groupId: `podium.service.${NAME}`, sessionTimeout: Number(process.env.PODIUM_SESSION_TIMEOUT_MS || 6000), heartbeatInterval: 1000, maxWaitTimeInMs: 5,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: types.map(wire.commands), fromBeginning: true });

  const answer = async (partition, cause, [kind, data]) => {
    const record = wire.write({
      id: `${data.command_id}:${kind}`, source: SOURCE, type: `podium.task.${kind}`,
      workflowid: cause.attrs.workflowid, taskid: data.task_id, attempt: data.attempt,
      correlationid: cause.attrs.correlationid || cause.attrs.workflowid,
      causationid: cause.attrs.id, traceparent: cause.attrs.traceparent,
    }, data);
    await producer.send({ topic: wire.outcomes(data.task_type), acks: -1, messages: [{ ...record, partition }] });
  };

  consumer.on(consumer.events.GROUP_JOIN, () => console.error(`podium: ready (service ${NAME}: ${types.join(", ")})`));
  await consumer.run({
    partitionsConsumedConcurrently: PARTITIONS,
    eachMessage: async ({ topic, partition, message }) => {
      let event;
      try {
        event = wire.read(message);
        if (event.attrs.type !== "podium.task.command") throw new Error(`a ${event.attrs.type} event does not belong on a command topic`);
      } catch (err) {
        console.error(`dead-lettering ${topic}[${partition}]@${message.offset}: ${err.message}`);
        const headers = { ...message.headers, podium_dlq_reason: err.message, podium_dlq_topic: topic,
          podium_dlq_partition: String(partition), podium_dlq_offset: String(message.offset) };
        await producer.send({ topic: wire.DEAD_LETTER, acks: -1, messages: [{ key: message.key || "", value: message.value || "", headers }] });
        return;
      }
      const command = event.data;
      const done = finished.get(command.command_id);
      if (done) { // a redelivery of work already done: answer, don't rerun
        await answer(partition, event, done);
        return;
      }
      await answer(partition, event, outcomeOf(command, "started", { input: null }));
      const outcome = await run(command, event.attrs.workflowid);
      await answer(partition, event, outcome);
      finished.set(command.command_id, outcome);
      if (finished.size > FINISHED_WINDOW) finished.delete(finished.keys().next().value);
      console.error(`${command.command_id}: ${outcome[0]}`);
    },
  });

  const stop = async () => {
    await consumer.disconnect(); // commits and leaves the group
    await producer.disconnect();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
