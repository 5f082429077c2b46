// Live refresh of the regional bed view: every 5 s, fetch the table fragment for
// the same filters and swap it in, without reloading the page. No framework.
(function () {
  const status = document.getElementById('refresh-status');
  async function refresh() {
    try {
      const r = await fetch('/region/table' + window.location.search, { credentials: 'same-origin' });
      if (!r.ok) throw new Error(String(r.status));
      const html = await r.text();
      const current = document.getElementById('beds');
      if (current) current.outerHTML = html;
      if (status) status.textContent = 'Mis à jour à ' + new Date().toLocaleTimeString('fr-FR');
    } catch (e) {
      if (status) status.textContent = 'Actualisation impossible pour le moment, nouvel essai dans 5 secondes.';
    }
  }
  setInterval(refresh, 5000);
})();
