// The drop-an-image page: sends the image to /upload as the API's own
// clients do (multipart field "file", bearer token) and shows the answer.
// No framework and no inline script, so the page's CSP can forbid both.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var authOn = document.body.dataset.auth === 'on';
  $(authOn ? 'auth-box' : 'auth-off').hidden = false;

  // What each error code means for someone using this page; the server's
  // detail follows it.
  var advice = {
    invalid_token: 'The token was refused. Paste a valid access token above (make dev prints one).',
    invalid_request: 'The request was refused.',
    insufficient_scope: 'The token is valid but lacks the scope this service requires.',
    auth_unavailable: 'The service cannot reach its identity provider right now. Try again shortly.',
    file_missing: 'No image was sent.',
    file_empty: 'That file is empty.',
    multiple_files: 'Send one image at a time.',
    bad_request: 'The upload was malformed.',
    unsupported_media_type: 'The upload was not sent as a form.',
    unsupported_image: 'That file is not an image this service reads.',
    corrupt_image: 'The image data is damaged or cut short.',
    payload_too_large: 'That file is too large.',
    image_too_large: 'That image is too large.',
    busy: 'The service is busy. Try again in a moment.'
  };

  var thumbURL = null;
  function show(id, text) { $(id).textContent = text; $(id).hidden = !text; }

  function send(file) {
    if (!file) return;
    show('error', '');
    $('result').hidden = true;
    if (thumbURL) URL.revokeObjectURL(thumbURL);
    thumbURL = URL.createObjectURL(file);
    $('thumb').src = thumbURL;
    var token = $('token').value.trim().replace(/^Bearer\s+/i, '');
    if (authOn && !token) {
      show('error', 'This service needs an access token: paste one above (make dev prints one).');
      return;
    }
    var form = new FormData();
    form.append('file', file, file.name || 'pasted-image');
    var headers = {};
    if (token) headers.Authorization = 'Bearer ' + token;
    $('status').textContent = 'Classifying ' + (file.name || 'the pasted image') + '…';
    fetch('/upload', { method: 'POST', body: form, headers: headers })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) { return { resp: resp, body: body }; });
      })
      .then(function (r) {
        $('status').textContent = '';
        if (r.resp.ok) { render(r.body); return; }
        var b = r.body || {};
        var text = (advice[b.error] || 'The request failed (HTTP ' + r.resp.status + ').') + (b.detail ? ' (' + b.detail + ')' : '');
        show('error', text);
        $('error').dataset.code = b.error || '';
      })
      .catch(function (err) {
        $('status').textContent = '';
        show('error', 'Could not reach the service: ' + err.message);
      });
  }

  function render(p) {
    $('label').textContent = p.prediction;
    $('confidence').textContent = Math.round(p.confidence * 100) + '% sure';
    var bars = $('bars');
    bars.textContent = '';
    (p.scores || []).forEach(function (s) {
      var li = document.createElement('li');
      var name = document.createElement('span');
      name.textContent = s.label;
      var bar = document.createElement('span');
      bar.className = 'bar';
      var fill = document.createElement('span');
      fill.style.width = (s.probability * 100).toFixed(1) + '%';
      bar.appendChild(fill);
      var pct = document.createElement('span');
      pct.textContent = (s.probability * 100).toFixed(1) + '%';
      li.append(name, bar, pct);
      bars.appendChild(li);
    });
    var t = p.timings_ms || {};
    $('meta').textContent = p.image.format.toUpperCase() + ' ' + p.image.width + '×' + p.image.height +
      ' · model ' + p.model.name + ' v' + p.model.version +
      ' · ' + (t.total || 0).toFixed(1) + ' ms on the server (decode ' + (t.decode || 0).toFixed(1) +
      ', inference ' + (t.inference || 0).toFixed(1) + ')';
    $('result').hidden = false;
  }

  $('file').addEventListener('change', function () { send(this.files[0]); this.value = ''; });
  var drop = $('drop');
  drop.addEventListener('dragover', function (e) { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', function () { drop.classList.remove('over'); });
  drop.addEventListener('drop', function (e) {
    e.preventDefault();
    drop.classList.remove('over');
    var files = e.dataTransfer.files;
    if (files.length > 1) { show('error', 'Drop one image at a time.'); return; }
    send(files[0]);
  });
  drop.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); } });
  document.addEventListener('paste', function (e) {
    var items = (e.clipboardData && e.clipboardData.files) || [];
    if (items.length) { e.preventDefault(); send(items[0]); }
  });
})();
