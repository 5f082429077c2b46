// A consultation guest's page: checks camera and microphone, and once ready
// waits for the doctor, then enters the room.
(function () {
  const say = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  document.getElementById('check').addEventListener('click', async () => {
    let camera = false;
    let microphone = false;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      document.getElementById('preview').srcObject = stream;
      camera = stream.getVideoTracks().length > 0;
      microphone = stream.getAudioTracks().length > 0;
    } catch (e) { /* refused or missing */ }
    say('camera', camera ? 'fonctionne' : 'introuvable ou refusée');
    say('microphone', microphone ? 'fonctionne' : 'introuvable ou refusé');
  });
  const presence = document.getElementById('presence');
  if (!presence.dataset.waiting) return;
  const token = presence.dataset.token;
  const poll = async () => {
    try {
      const r = await fetch(`/invite/${token}/etat`, { cache: 'no-store', credentials: 'same-origin' });
      if (r.ok && (await r.json()).stage === 'admitted') {
        location.href = `/invite/${token}/salle`;
        return;
      }
      if (r.status === 403) {
        location.href = '/invite/fin';
        return;
      }
    } catch (e) { /* a cut: try again */ }
    setTimeout(poll, 1500);
  };
  poll();
})();
