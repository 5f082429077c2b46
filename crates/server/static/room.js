// The consultation room: video and sound by WebRTC between the two browsers,
// signalled through the server's WebSocket (which only relays), a text chat,
// what the other side does, and reconnection after a network cut.
(function () {
  const el = document.getElementById('room');
  const id = el.dataset.room;
  const role = el.dataset.role;
  const ice = JSON.parse(el.dataset.ice || '[]');
  const local = document.getElementById('local');
  const remote = document.getElementById('remote');
  const log = document.getElementById('chat-log');
  const status = document.getElementById('room-status');
  let pc = null;
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
  const send = (m) => { if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); };
  async function media() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      local.srcObject = stream;
    } catch (e) {
      say('Caméra ou micro indisponible : la consultation continue par écrit.');
    }
  }
  function peer() {
    if (pc) pc.close();
    pc = new RTCPeerConnection({ iceServers: ice });
    if (stream) stream.getTracks().forEach((t) => pc.addTrack(t, stream));
    pc.onicecandidate = (e) => { if (e.candidate) send({ type: 'ice', candidate: e.candidate }); };
    pc.ontrack = (e) => { remote.srcObject = e.streams[0]; };
    pc.onconnectionstatechange = () => {
      document.documentElement.dataset.rtc = pc.connectionState;
      if (pc.connectionState === 'connected') say('En consultation.');
      if (pc.connectionState === 'failed' && role === 'doctor') call();
    };
  }
  async function call() {
    peer();
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: 'offer', sdp: pc.localDescription });
  }
  async function onMessage(m) {
    if (m.type === 'hello' || m.type === 'here') {
      if (m.type === 'hello') send({ type: 'here' });
      if (role === 'doctor') await call();
    } else if (m.type === 'offer') {
      peer();
      await pc.setRemoteDescription(m.sdp);
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: 'answer', sdp: pc.localDescription });
    } else if (m.type === 'answer' && pc) {
      await pc.setRemoteDescription(m.sdp);
    } else if (m.type === 'ice' && pc) {
      try { await pc.addIceCandidate(m.candidate); } catch (e) { /* a late candidate */ }
    } else if (m.type === 'file') {
      fileLine("L'autre participant a partagé", m.id, m.name);
    } else if (m.type === 'chat') {
      line(m.from, m.text);
    } else if (m.type === 'camera') {
      line('Parcours', m.on ? "L'autre participant a rallumé sa caméra" : "L'autre participant a coupé sa caméra");
    } else if (m.type === 'closed') {
      // The doctor closed the consultation: the patient goes to its page
      // (payment, then the prescription).
      if (pc) pc.close();
      location.href = `/rdv/${id}`;
    } else if (m.type === 'peer') {
      line('Parcours', m.event === 'joined' ? "L'autre participant est dans la salle" : "L'autre participant a quitté la salle");
    }
  }
  function connect() {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + `/consultation/${id}/ws`);
    ws.onopen = () => {
      document.documentElement.dataset.signal = 'open';
      send({ type: 'hello' });
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
    send({ type: 'chat', from: el.dataset.me, text });
    line('Moi', text);
    input.value = '';
  });
  document.getElementById('camera-toggle').addEventListener('click', (e) => {
    if (!stream) return;
    const on = !stream.getVideoTracks().every((t) => t.enabled);
    stream.getVideoTracks().forEach((t) => { t.enabled = on; });
    e.target.textContent = on ? 'Couper ma caméra' : 'Rallumer ma caméra';
    send({ type: 'camera', on });
  });
  document.getElementById('file-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('file-input');
    if (!input.files.length) return;
    const body = new FormData();
    body.append('csrf', e.target.dataset.csrf);
    body.append('fichier', input.files[0]);
    const r = await fetch(`/consultation/${id}/fichier`, { method: 'POST', body, credentials: 'same-origin' });
    const status = document.getElementById('file-status');
    if (r.ok) {
      const f = await r.json();
      fileLine('Vous avez partagé', f.id, f.name);
      status.textContent = 'Fichier partagé.';
      input.value = '';
    } else {
      status.textContent = r.status === 413 ? 'Fichier trop volumineux (5 Mo au plus).' : 'Seuls les photos et les PDF peuvent être partagés.';
    }
  });
  media().then(connect);
})();
