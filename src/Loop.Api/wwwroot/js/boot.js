// Loaded before the app's modules. A module that fails to download (a dropped connection, a
// network change) stops the whole app before any of it runs, leaving "Loading Loop…" for good:
// reload a few times, then say so.
(function () {
  var app = document.querySelector('script[type="module"]');
  var tries = Number(sessionStorage.getItem('loop.bootTries') || 0);
  var failed = false;
  app.addEventListener('error', function () {
    failed = true;
    if (tries < 3) {
      sessionStorage.setItem('loop.bootTries', String(tries + 1));
      setTimeout(function () { location.reload(); }, 500 * (tries + 1));
      return;
    }
    sessionStorage.removeItem('loop.bootTries');
    document.getElementById('app').textContent = 'The dashboard could not be loaded from the daemon. Check that loop serve is running, then reload the page.';
  });
  window.addEventListener('load', function () { if (!failed) sessionStorage.removeItem('loop.bootTries'); });
})();
