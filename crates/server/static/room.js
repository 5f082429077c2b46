// The consultation room: video and sound by WebRTC between the browsers of
// the doctor, the patient and up to two guests (a mesh: each browser sends to
// each other one), signalled through the server's WebSocket (which only
// relays, each message to the one it names), a text chat, what the others
// do, and reconnection after a network cut. Of two participants, the one
// whose side sorts first calls the other (so that two hellos crossing never
// make both call); each negotiation is numbered, and an answer or candidate
// of an older one is ignored.
(function () {
  const el = document.getElementById('room');
  const id = el.dataset.room;
  const me = el.dataset.side;
  const myName = el.dataset.me;
  const ice = JSON.parse(el.dataset.ice || '[]');
  const wsPath = el.dataset.ws;
  const after = el.dataset.after;
  const local = document.getElementById('local');
  const remotes = document.getElementById('remotes');
  const log = document.getElementById('chat-log');
  const status = document.getElementById('room-status');
  const peers = new Map(); // side -> { pc, video, name, gen, caller }
  let generation = 0;
  let ws = null;
  let stream = null;
  const say = (t) => { status.textContent = t; };
  const line = (who, text) => {
    const li = document.createElement('li');
    li.textContent = `${who} : ${text}`;
    log.appendChild(li);
  };
  const fileLine = (what, fileId, name) => {
    const li = document.createElement('li');
    li.append(`${what} : `);
    const a = document.createElement('a');
    a.href = `/pieces/${fileId}`;
    a.target = '_blank';
    a.rel = 'noopener';
    a.textContent = name || 'un fichier';
    li.appendChild(a);
    log.appendChild(li);
  };
  const send = (m) => { if (ws && ws.readyState === 1) ws.send(JSON.stringify({ ...m, from: me })); };
  const connected = () => [...peers.values()].filter((p) => p.pc && p.pc.connectionState === 'connected').length;
  function mark() {
    const n = connected();
    document.documentElement.dataset.rtc = n > 0 ? 'connected' : 'waiting';
    document.documentElement.dataset.peers = String(n);
    if (n > 0) say(n === 1 ? 'En consultation.' : `En consultation à ${n + 1}.`);
  }
  async function media() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      local.srcObject = stream;
    } catch (e) {
      say('Caméra ou micro indisponible : la consultation continue par écrit.');
    }
  }
  function videoFor(side, name) {
    // The first one takes the video already in the page.
    const first = document.getElementById('remote');
    let v = [...remotes.querySelectorAll('video')].find((x) => x.dataset.peer === side);
    if (!v && first && !first.dataset.peer) v = first;
    if (!v) {
      v = document.createElement('video');
      v.autoplay = true;
      v.playsInline = true;
      v.className = 'remote';
      remotes.appendChild(v);
    }
    v.dataset.peer = side;
    v.setAttribute('aria-label', `Image de ${name || 'un participant'}`);
    return v;
  }
  function drop(side) {
    const p = peers.get(side);
    if (!p) return;
    if (p.pc) p.pc.close();
    if (p.video) {
      p.video.srcObject = null;
      if (p.video.id === 'remote') delete p.video.dataset.peer; else p.video.remove();
    }
    peers.delete(side);
    mark();
  }
  function peer(side, name) {
    drop(side);
    const pc = new RTCPeerConnection({ iceServers: ice });
    const entry = { pc, video: videoFor(side, name), name };
    peers.set(side, entry);
    if (stream) stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'ice', to: side, gen: entry.gen, candidate: e.candidate }); };
    pc.ontrack = (e) => { entry.video.srcObject = e.streams[0]; };
    pc.onconnectionstatechange = () => {
      mark();
      if (pc.connectionState === 'failed' && entry.caller) call(side, name);
    };
    return entry;
  }
  async function call(side, name) {
    const entry = peer(side, name);
    entry.caller = true;
    generation += 1;
    entry.gen = `${me}:${generation}`;
    await entry.pc.setLocalDescription(await entry.pc.createOffer());
    send({ type: 'offer', to: side, gen: entry.gen, sdp: entry.pc.localDescription, name: myName });
  }
  const calls = (other) => me < other;
  function waitingGuest(m) {
    const box = document.getElementById('guests-waiting');
    if (!box || box.querySelector(`[data-guest="${m.guest}"]`)) return;
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.guest = m.guest;
    b.textContent = `Faire entrer ${m.name}`;
    b.addEventListener('click', async () => {
      const body = new URLSearchParams({ csrf: el.dataset.csrf });
      const r = await fetch(`/consultation/${id}/invites/${m.guest}/entrer`, { method: 'POST', body, credentials: 'same-origin' });
      if (r.ok) { b.remove(); line('Parcours', `${m.name} entre dans la salle`); } else { line('Parcours', "L'invité n'a pas pu entrer"); }
    });
    box.appendChild(b);
  }
  async function onMessage(m) {
    if (m.to && m.to !== me) return;
    if (m.type === 'hello') {
      // Someone (re)joins: what we had with them is over.
      drop(m.from);
      send({ type: 'here', to: m.from, name: myName });
      if (calls(m.from)) await call(m.from, m.name);
    } else if (m.type === 'here') {
      if (calls(m.from)) await call(m.from, m.name);
    } else if (m.type === 'offer') {
      const entry = peer(m.from, m.name);
      entry.gen = m.gen;
      await entry.pc.setRemoteDescription(m.sdp);
      await entry.pc.setLocalDescription(await entry.pc.createAnswer());
      send({ type: 'answer', to: m.from, gen: m.gen, sdp: entry.pc.localDescription });
    } else if (m.type === 'answer') {
      const entry = peers.get(m.from);
      if (entry && entry.caller && entry.gen === m.gen) await entry.pc.setRemoteDescription(m.sdp);
    } else if (m.type === 'ice') {
      const entry = peers.get(m.from);
      if (entry && entry.gen === m.gen) {
        try { await entry.pc.addIceCandidate(m.candidate); } catch (e) { /* a late candidate */ }
      }
    } else if (m.type === 'file') {
      fileLine('Un participant a partagé', m.id, m.name);
    } else if (m.type === 'chat') {
      line(m.who, m.text);
    } else if (m.type === 'camera') {
      line('Parcours', m.on ? `${m.who} a rallumé sa caméra` : `${m.who} a coupé sa caméra`);
    } else if (m.type === 'closed') {
      // The doctor closed the consultation: each goes to what follows.
      peers.forEach((p) => p.pc && p.pc.close());
      location.href = after;
    } else if (m.type === 'revoked' && me === `guest-${m.guest}`) {
      location.href = after;
    } else if (m.type === 'guest-waiting') {
      waitingGuest(m);
    } else if (m.type === 'peer') {
      if (m.event === 'left') {
        const name = peers.has(m.from) ? peers.get(m.from).name : null;
        drop(m.from);
        line('Parcours', `${name || 'Un participant'} a quitté la salle`);
      } else {
        line('Parcours', 'Un participant est dans la salle');
      }
    }
  }
  function connect() {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + wsPath);
    ws.onopen = () => {
      document.documentElement.dataset.signal = 'open';
      send({ type: 'hello', name: myName });
    };
    ws.onmessage = (ev) => { onMessage(JSON.parse(ev.data)).catch(() => {}); };
    ws.onclose = () => {
      document.documentElement.dataset.signal = 'closed';
      say('Connexion perdue, reconnexion…');
      setTimeout(connect, 2000);
    };
  }
  document.getElementById('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = document.getElementById('chat-text');
    const text = input.value.trim();
    if (!text) return;
    send({ type: 'chat', who: myName, text });
    line('Moi', text);
    input.value = '';
  });
  document.getElementById('camera-toggle').addEventListener('click', (e) => {
    if (!stream) return;
    const on = !stream.getVideoTracks().every((t) => t.enabled);
    stream.getVideoTracks().forEach((t) => { t.enabled = on; });
    e.target.textContent = on ? 'Couper ma caméra' : 'Rallumer ma caméra';
    send({ type: 'camera', on, who: myName });
  });
  const fileForm = document.getElementById('file-form');
  if (fileForm) fileForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('file-input');
    if (!input.files.length) return;
    const body = new FormData();
    body.append('csrf', e.target.dataset.csrf);
    body.append('fichier', input.files[0]);
    const r = await fetch(`/consultation/${id}/fichier`, { method: 'POST', body, credentials: 'same-origin' });
    const fileStatus = document.getElementById('file-status');
    if (r.ok) {
      const f = await r.json();
      fileLine('Vous avez partagé', f.id, f.name);
      fileStatus.textContent = 'Fichier partagé.';
      input.value = '';
    } else {
      fileStatus.textContent = r.status === 413 ? 'Fichier trop volumineux (5 Mo au plus).' : 'Seuls les photos et les PDF peuvent être partagés.';
    }
  });
  const box = document.getElementById('guests-waiting');
  if (box) JSON.parse(box.dataset.initial || '[]').forEach(waitingGuest);
  media().then(connect);
})();
