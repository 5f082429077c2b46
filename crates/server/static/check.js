// The help page's device and network check: camera and microphone (asked
// through the browser's own permission prompt, nothing recorded or sent),
// WebRTC support, and the time a round trip to the platform takes.
(function () {
  "use strict";
  var start = document.getElementById("check-start");
  var list = document.getElementById("check-results");
  var video = document.getElementById("check-video");
  if (!start || !list) return;
  function say(ok, text) {
    var li = document.createElement("li");
    li.textContent = (ok ? "✔ " : "✘ ") + text;
    li.className = ok ? "ok" : "ko";
    list.appendChild(li);
  }
  start.addEventListener("click", function () {
    list.textContent = "";
    say(typeof RTCPeerConnection === "function", typeof RTCPeerConnection === "function"
      ? "Votre navigateur sait faire de la vidéo (WebRTC)."
      : "Votre navigateur ne sait pas faire de la vidéo : utilisez Chrome, Firefox, Edge ou Safari à jour.");
    var t0 = performance.now();
    fetch("/healthz", { cache: "no-store" }).then(function (r) {
      var ms = Math.round(performance.now() - t0);
      say(r.ok && ms < 1500, r.ok ? "Connexion à Parcours : réponse en " + ms + " ms" + (ms < 1500 ? "." : " (lente : rapprochez-vous de la box ou utilisez le Wi-Fi).") : "Parcours ne répond pas correctement.");
    }).catch(function () { say(false, "Pas de connexion à Parcours : vérifiez votre accès à Internet."); });
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(false, "Caméra et micro inaccessibles sur ce navigateur (il faut une adresse https).");
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: true, audio: true }).then(function (stream) {
      say(stream.getVideoTracks().length > 0, stream.getVideoTracks().length > 0 ? "Caméra : elle fonctionne." : "Aucune caméra trouvée.");
      say(stream.getAudioTracks().length > 0, stream.getAudioTracks().length > 0 ? "Micro : il fonctionne." : "Aucun micro trouvé.");
      if (video) { video.hidden = false; video.srcObject = stream; video.play().catch(function () {}); }
      setTimeout(function () { stream.getTracks().forEach(function (t) { t.stop(); }); if (video) video.hidden = true; }, 5000);
    }).catch(function (e) {
      say(false, "Caméra ou micro refusés ou absents (" + (e && e.name ? e.name : "erreur") + ") : autorisez-les dans les réglages du navigateur.");
    });
  });
})();
