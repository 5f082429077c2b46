// The patient's waiting room: checks camera, microphone and network, then keeps a
// WebSocket open as their presence (reconnecting after a cut), and tells the
// server what the check found.
(function () {
  const found = { camera: false, microphone: false };
  const say = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  document.getElementById('check').addEventListener('click', async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      document.getElementById('preview').srcObject = stream;
      found.camera = stream.getVideoTracks().length > 0;
      found.microphone = stream.getAudioTracks().length > 0;
    } catch (e) {
      found.camera = false; found.microphone = false;
    }
    say('camera', found.camera ? 'fonctionne' : 'introuvable ou refusée');
    say('microphone', found.microphone ? 'fonctionne' : 'introuvable ou refusé');
    const t0 = performance.now();
    try {
      await fetch('/healthz', { cache: 'no-store' });
      const ms = Math.round(performance.now() - t0);
      say('network', ms < 300 ? `bonne (${ms} ms)` : `lente (${ms} ms)`);
    } catch (e) {
      say('network', 'coupée');
    }
  });
  const button = document.getElementById('ready');
  button.addEventListener('click', () => {
    button.disabled = true;
    const connect = () => {
      const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + `/rdv/${button.dataset.room}/salle/ws`);
      ws.onopen = () => {
        ws.send(JSON.stringify(found));
        document.documentElement.dataset.presence = 'open';
        say('presence', 'Vous êtes en salle d\'attente. Le médecin voit que vous êtes là ; gardez cette page ouverte.');
      };
      // The doctor lets the patient in: on to the consultation room.
      ws.onmessage = (ev) => { if (ev.data === 'entrer') location.href = `/consultation/${button.dataset.room}`; };
      ws.onclose = () => {
        document.documentElement.dataset.presence = 'closed';
        say('presence', 'Connexion perdue, nouvelle tentative…');
        setTimeout(connect, 2000);
      };
    };
    connect();
  });
})();
