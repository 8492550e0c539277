// Bootstrap of the People GraphQL playground: renders GraphiQL against /graphql with the
// session cookie, and tells who is logged in. It lives in a file, not inline, so that the
// page's Content-Security-Policy can keep script-src 'self'.
(function () {
  'use strict';

  var endpoint = '/graphql';

  // post sends one GraphQL request the way the API's CSRF rules accept from a browser: POST,
  // Content-Type application/json, same-origin, with the session cookie.
  function post(params, headers) {
    var h = {};
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    h['Content-Type'] = 'application/json';
    h['Accept'] = 'application/graphql-response+json, application/json;q=0.9';
    return fetch(endpoint, {
      method: 'POST',
      credentials: 'same-origin',
      headers: h,
      body: JSON.stringify(params),
    }).then(function (res) {
      var type = res.headers.get('Content-Type') || '';
      if (type.indexOf('json') >= 0) {
        return res.json();
      }
      // Not a GraphQL answer (a proxy error page, a 405): show the status instead of a parse error.
      return res.text().then(function (body) {
        return { errors: [{ message: 'HTTP ' + res.status + ': ' + body.slice(0, 500) }] };
      });
    });
  }

  // fetcher is GraphiQL's; opts.headers holds what the user typed in the Headers tab.
  function fetcher(params, opts) {
    return post(params, opts && opts.headers);
  }

  // showUser fills the bar: the email and "Log out" when logged in, "Log in" when not. When
  // the answer says neither (network down, server error), both buttons stay.
  function showUser() {
    var user = document.getElementById('pg-user');
    var login = document.getElementById('pg-login');
    var logout = document.getElementById('pg-logout');
    post({ query: '{ me { email } }' }).then(function (res) {
      var me = res && res.data && res.data.me;
      if (me && me.email) {
        user.textContent = 'Logged in as ' + me.email;
        login.hidden = true;
        logout.hidden = false;
        return;
      }
      var unauthenticated = (res && res.errors || []).some(function (e) {
        return e.extensions && e.extensions.code === 'UNAUTHENTICATED';
      });
      if (unauthenticated) {
        user.textContent = 'Not logged in';
        login.hidden = false;
        logout.hidden = true;
      }
    }).catch(function () {});
  }

  var defaultQuery = [
    '# Log in (top right) to query as yourself.',
    '# Ctrl-Enter runs the query.',
    '',
    '{',
    '  me {',
    '    email',
    '    organization {',
    '      name',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');

  function start() {
    var root = ReactDOM.createRoot(document.getElementById('graphiql'));
    root.render(React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
    }));
    showUser();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
