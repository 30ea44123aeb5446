// The one thing Node cannot do for a sidecar: read a redirected connection's original
// destination (getsockopt SO_ORIGINAL_DST, what Envoy's original_dst listener filter reads).
// A Node-API addon in C, so it builds against any Node >= 18 with only a C compiler and Node's
// headers, and the same .node file loads in every worker thread.

#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

// <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> define both as 80; written
// here so the build needs no kernel headers.
#define MELTEMI_SO_ORIGINAL_DST 80
#define MELTEMI_IP6T_SO_ORIGINAL_DST 80

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char code[32];
  char message[160];
  snprintf(code, sizeof code, "%s", err == ENOENT ? "ENOENT" : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : err == ENOPROTOOPT ? "ENOPROTOOPT" : "EIO");
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

static napi_value make_result(napi_env env, const char* address, int port, int family) {
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, result, "address", value);
  napi_create_int32(env, port, &value);
  napi_set_named_property(env, result, "port", value);
  napi_create_int32(env, family, &value);
  napi_set_named_property(env, result, "family", value);
  return result;
}

// originalDestination(fd) -> { address, port, family }; throws with code ENOENT when the
// connection was not redirected (no NAT entry), EBADF/ENOTSOCK for a bad descriptor.
static napi_value original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "originalDestination(fd): fd must be a descriptor number");
    return NULL;
  }
  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr*)&local, &len) != 0) return throw_errno(env, "getsockname", errno);
  int v4 = local.ss_family == AF_INET;
  if (local.ss_family == AF_INET6) {
    // A dual-stack socket carrying IPv4: the NAT entry is an IPv4 one.
    struct sockaddr_in6* l6 = (struct sockaddr_in6*)&local;
    v4 = IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr);
  } else if (!v4) {
    napi_throw_error(env, "EAFNOSUPPORT", "originalDestination: not a TCP/IP socket");
    return NULL;
  }
  char text[INET6_ADDRSTRLEN];
  if (v4) {
    struct sockaddr_in dst;
    socklen_t dlen = sizeof dst;
    if (getsockopt(fd, SOL_IP, MELTEMI_SO_ORIGINAL_DST, &dst, &dlen) != 0) return throw_errno(env, "SO_ORIGINAL_DST", errno);
    inet_ntop(AF_INET, &dst.sin_addr, text, sizeof text);
    return make_result(env, text, ntohs(dst.sin_port), 4);
  }
  struct sockaddr_in6 dst6;
  socklen_t dlen6 = sizeof dst6;
  if (getsockopt(fd, SOL_IPV6, MELTEMI_IP6T_SO_ORIGINAL_DST, &dst6, &dlen6) != 0) return throw_errno(env, "IP6T_SO_ORIGINAL_DST", errno);
  inet_ntop(AF_INET6, &dst6.sin6_addr, text, sizeof text);
  return make_result(env, text, ntohs(dst6.sin6_port), 6);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, original_destination, NULL, &fn);
  napi_set_named_property(env, exports, "originalDestination", fn);
  return exports;
}
