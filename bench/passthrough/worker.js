// Passthrough: forwards every request to ORIGIN_URL + path + query with the same method, headers and
// body, and does nothing else. The floor that every other system is compared with.
export default {
  fetch(request, env) {
    const url = request.url;
    // request.url is absolute ("http://host/path?query"): the path starts at the first "/" after "//".
    return fetch(env.ORIGIN_URL + url.slice(url.indexOf("/", url.indexOf("//") + 2)), request);
  },
};
