// hello-node-event: an event function in Node.js, written as an ES module.
//
// Duct calls handler(event, context) and answers its result as JSON. Over
// HTTP the event is the JSON body; from a trigger it is a CloudEvent, whose
// payload is event.data. context carries invocationId, functionName and
// getRemainingTimeInMillis().

export async function handler(event, context) {
  const input = event && event.specversion ? event.data : event;
  const name = input && input.name;
  if (!name) {
    // A thrown error answers 500 with {"errorType":…,"errorMessage":…}.
    throw new TypeError('name is missing: send {"name":"Ada"}');
  }
  console.log(`greeting ${name}`);
  return { greeting: `Hello, ${name}` };
}
