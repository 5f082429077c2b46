// Live views without a framework: every element with data-live-src is replaced,
// every data-live-every milliseconds (default 5000), by the HTML fragment its URL
// returns, keeping the page's query (filters). A status line says when it worked.
(function () {
  function start(el) {
    const every = Number(el.dataset.liveEvery || 5000);
    const status = document.getElementById(el.dataset.liveStatus || 'refresh-status');
    const id = el.id;
    // One fetch at a time: events arriving meanwhile ask for one more, not one each
    // (a busy queue may change many times a second).
    let busy = false;
    let again = false;
    const refresh = async () => {
      if (busy) { again = true; return; }
      busy = true;
      try { await fetchFragment(); } finally { busy = false; }
      if (again) { again = false; refresh(); }
    };
    const fetchFragment = async () => {
      const current = document.getElementById(id);
      if (!current) return;
      try {
        const r = await fetch(current.dataset.liveSrc + window.location.search, { credentials: 'same-origin' });
        // The session ended (logout elsewhere, account disabled): show the login page.
        if (r.redirected && new URL(r.url).pathname === '/login') { window.location.assign('/login'); return; }
        if (!r.ok) throw new Error(String(r.status));
        current.outerHTML = await r.text();
        if (status) status.textContent = 'Mis à jour à ' + new Date().toLocaleTimeString('fr-FR');
      } catch (e) {
        if (status) status.textContent = 'Actualisation impossible pour le moment, nouvel essai bientôt.';
      }
    };
    // Polling is the fallback; a WebSocket, when the view has one, says when to refresh.
    setInterval(refresh, every);
    if (el.dataset.liveWs) {
      const connect = () => {
        const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + el.dataset.liveWs);
        // The page says whether the push channel is up (tests and support read it).
        ws.onopen = () => { document.documentElement.dataset.liveWs = 'open'; };
        ws.onmessage = refresh;
        ws.onclose = () => {
          document.documentElement.dataset.liveWs = 'closed';
          // A closed socket may mean the session ended: refresh now to find out.
          refresh();
          setTimeout(connect, 3000);
        };
      };
      connect();
    }
  }
  document.querySelectorAll('[data-live-src]').forEach(start);
})();
