namespace Loop.Api;

using Loop.Config;
using Microsoft.AspNetCore.Http;

/// <summary>
/// The host names the daemon answers to: <c>localhost</c> and IP addresses on its API port, and the
/// entries of <c>allowed_hosts</c> (a name alone matches any port). A page that reaches the daemon
/// through DNS rebinding (attacker.example resolved to 127.0.0.1) sends its own name as Host: it
/// is answered 421 Misdirected Request, the status RFC 9110 has for a request this server will not
/// answer for that host, before anything else runs, dashboard files included. An IP address cannot
/// be rebound, so every one is served. The unix socket has no host names and is exempt.
/// </summary>
public sealed class ServedHosts
{
    private readonly int _apiPort;
    private readonly IReadOnlyList<(string Host, int? Port)> _allowed;

    public ServedHosts(int apiPort, IEnumerable<string> allowedHosts)
    {
        _apiPort = apiPort;
        _allowed = allowedHosts.Select(entry => ApiAddress.TryParseHost(entry, out var host, out var port)
            ? (host, port)
            : throw new FormatException($"allowed_hosts entry '{entry}' must be a host name or host:port, like loop.example.com")).ToList();
    }

    public bool Serves(HostString hostHeader, bool https)
    {
        if (string.IsNullOrEmpty(hostHeader.Host))
        {
            return false;
        }
        var host = ApiAddress.NormalizeHost(hostHeader.Host);
        var port = hostHeader.Port ?? (https ? 443 : 80);
        return (host == "localhost" || ApiAddress.IsIpAddress(host)) && port == _apiPort
            || _allowed.Any(allowed => allowed.Host == host && (allowed.Port is null || allowed.Port == port));
    }

    /// <summary>Middleware: refuses a Host this daemon does not serve.</summary>
    public Task CheckAsync(HttpContext context, RequestDelegate next)
    {
        if (!ApiCallers.OnContainerEndpoint(context) && !Serves(context.Request.Host, context.Request.IsHttps))
        {
            var host = context.Request.Host.Value;
            throw new BadHttpRequestException(string.IsNullOrEmpty(host)
                ? "the request has no Host header"
                : $"this daemon does not answer to the host name {host}: reach it as localhost or by IP address on port {_apiPort}, " +
                  "or add the name to allowed_hosts in its config.json", StatusCodes.Status421MisdirectedRequest);
        }
        return next(context);
    }
}
