// hello-node: an HTTP function in Node.js, written as a CommonJS module.
//
// Duct calls handler for every request to /fn/hello-node. req and res look
// like Express's: req.method, req.path, req.query, req.get(name), req.body
// (parsed JSON, form fields or text) and req.rawBody (a Buffer);
// res.status(code), res.set(name, value), res.send(body) and res.json(value).

exports.handler = async (req, res) => {
  if (req.method !== 'GET' && req.method !== 'POST') {
    return res.status(405).set('Allow', 'GET, POST').json({ error: 'use GET or POST' });
  }
  let name = req.query.name;
  if (!name && (req.get('content-type') || '').startsWith('application/json')) {
    // A JSON body arrives parsed; one that does not parse arrives as text.
    if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      return res.status(400).json({ error: 'the body must be a JSON object such as {"name":"Ada"}' });
    }
    name = req.body.name;
  }
  name = name || 'world';
  // Standard output and standard error are the function's log.
  console.log(`greeting ${name}`);
  res.set('X-Runtime', 'node').json({ greeting: `Hello, ${name}` });
};
