"""A small OpenAI-compatible HTTP server for the generator tests (real HTTP on loopback).

It stands in for a language model with scripted, deterministic behaviour derived from the
request (a hash of prompt and seed), so the pipeline's parsing and filters meet realistic
output: brainstorm answers in "Instruction:/Input:" blocks mixed with numbered lists, junk
lines, banned tasks, copies of the prompt's seed instructions or requirements, assistant talk and
tasks about "the abstract" with no input; responses that quote the retrieved passage with its PMID, and
now and then a refusal, a reply cut at max_tokens, a demonstration's answer or the instruction
restated.

Usage: python3 openai_server.py [--fail-first N] [--api-key KEY]   (prints the port on the first line of stdout)
  /v1/completions, /v1/chat/completions (POST); GET /stats -> {"requests": n, "failed": n}
  model "reject" -> HTTP 400; model "slow" -> sleeps 5 s; the first N POSTs -> HTTP 503;
  with --api-key, a POST without "Authorization: Bearer KEY" -> HTTP 401.
"""
import hashlib, json, re, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAIL_FIRST = int(sys.argv[sys.argv.index("--fail-first") + 1]) if "--fail-first" in sys.argv else 0
API_KEY = sys.argv[sys.argv.index("--api-key") + 1] if "--api-key" in sys.argv else None
lock = threading.Lock()
counts = {"requests": 0, "failed": 0}

VERBS = ["List", "Identify", "Summarise", "Explain", "Classify", "Extract", "Describe", "Compare", "Which", "What"]
SUBJECTS = ["the adverse events", "the genes", "the chemicals", "the diseases", "the primary outcome",
            "the study design", "the risk factors", "the drug interactions", "the mechanism of action",
            "the main conclusion", "the patient population", "the statistical methods"]
TOPICS = ["type 2 diabetes", "breast cancer", "asthma", "sepsis", "heart failure", "tuberculosis", "migraine",
          "rheumatoid arthritis", "chronic kidney disease", "malaria", "Parkinson disease", "hepatitis C",
          "atrial fibrillation", "osteoporosis", "HIV infection", "major depression", "stroke", "psoriasis"]
SOURCES = ["the abstract", "the trial report", "the case description", "the sentence", "the cohort study"]


def pick(h, i, seq):
    return seq[int(h[i * 4:(i + 1) * 4], 16) % len(seq)]


def brainstorm(prompt, seed):
    h = hashlib.sha256((prompt + str(seed)).encode()).hexdigest()
    seen = re.findall(r"^Instruction: (.+)$", prompt, re.M)
    blocks = []
    for k in range(4):
        hk = hashlib.sha256((h + str(k)).encode()).hexdigest()
        verb, subj, topic, src = pick(hk, 0, VERBS), pick(hk, 1, SUBJECTS), pick(hk, 2, TOPICS), pick(hk, 3, SOURCES)
        if verb in ("Which", "What"):
            ins = f"{verb} of {subj} in {src} concern {topic}?"
        else:
            ins = f"{verb} {subj} reported in {src} on {topic}."
        inp = f"A study of {100 + int(hk[20:24], 16) % 900} patients with {topic} reported outcomes after {3 + int(hk[24:26], 16) % 20} months of follow-up."
        blocks.append((ins, inp))
    kind = int(h[40:42], 16) % 6
    text = f" {blocks[0][0]}\nInput: {blocks[0][1]}\n\n"
    if kind == 0:   # a numbered list instead of blocks, plus chatter
        text += "Here are more tasks:\n" + "\n".join(f"{i + 2}. {b[0]}" for i, b in enumerate(blocks[1:]))
    else:
        for i, (ins, inp) in enumerate(blocks[1:]):
            text += f"Task {i + 5}\nInstruction: {ins}\nInput: {inp if i != 1 else '<noinput>'}\nOutput: an answer\n\n"
        if kind == 1:
            text += "Task 9\nInstruction: Draw a diagram of the pathway described in the abstract about " + blocks[0][0] + "\nInput: <noinput>\n"
        if kind == 2 and seen:
            text += "Task 9\nInstruction: " + seen[0] + "\nInput: <noinput>\n"
        if kind == 3:
            text += "Task 9\nInstruction: Go\nInput:\n\nlorem ipsum ::: ###\n"
        if kind >= 4:   # a chat assistant's talk and the prompt's own requirements copied as a task
            topic = pick(h, 2, TOPICS)
            text += f"Task 9\nInstruction: I am ready to help you with questions about {topic}.\nInput: <noinput>\n\n"
            text += f"Task 10\nInstruction: Vary the task types and stay in the biomedical domain when writing about {topic}.\nInput: <noinput>\n"
    return text, "stop"


def respond(prompt, max_tokens):
    h = hashlib.sha256(prompt.encode()).hexdigest()
    n = int(h[:8], 16)
    if n % 9 == 0:
        return "I'm sorry, but I cannot answer that question.", "stop"
    last = prompt.rsplit("### Instruction:\n", 1)[-1].split("\n")[0]
    demos = re.findall(r"### Response:\n(.*?)\n\n(?=### Instruction)", prompt, re.S)
    if n % 6 == 1 and demos:   # a demonstration's answer as a stock reply
        return max(demos, key=len), "stop"
    if n % 6 == 2:             # the instruction restated instead of answered
        return last, "stop"
    m = re.search(r"\[PMID (\d+)\] [^\n]*\n([^\n]+)", prompt)
    if m:
        first = re.split(r"(?<=[.!?]) ", m.group(2))[0]
        text = f"Regarding the task \"{last}\": the retrieved evidence states that {first} [PMID {m.group(1)}]"
    else:
        text = f"Regarding the task \"{last}\": the answer depends on the study population and design."
    words = text.split()
    if n % 7 == 0 or len(words) > max_tokens:
        return " ".join(words[:max(1, min(max_tokens, len(words) // 2))]), "length"
    return text, "stop"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            self.reply(200, dict(counts))

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with lock:
            counts["requests"] += 1
            fail = counts["requests"] <= FAIL_FIRST
            if fail:
                counts["failed"] += 1
        if fail:
            return self.reply(503, {"error": {"message": "warming up"}})
        if API_KEY is not None and self.headers.get("Authorization") != "Bearer " + API_KEY:
            return self.reply(401, {"error": {"message": "invalid API key"}})
        if req.get("model") == "reject":
            return self.reply(400, {"error": {"message": "unknown model"}})
        if req.get("model") == "slow":
            time.sleep(5)
        chat = self.path.endswith("/chat/completions")
        prompt = req["messages"][-1]["content"] if chat else req.get("prompt", "")
        if "Come up with" in prompt:
            text, reason = brainstorm(prompt, req.get("seed", 0))
        else:
            text, reason = respond(prompt, int(req.get("max_tokens", 256)))
        choice = {"index": 0, "finish_reason": reason}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        self.reply(200, {"id": "cmpl-test", "object": "chat.completion" if chat else "text_completion",
                         "model": req.get("model"), "choices": [choice]})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
