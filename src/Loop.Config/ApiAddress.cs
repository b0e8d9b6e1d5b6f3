using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Loop.Config;

/// <summary>The "host:port" form of <c>api_addr</c> ("127.0.0.1:8222", "localhost:8222", "[::1]:8222").</summary>
public static class ApiAddress
{
    public static bool TryParse(string? text, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = text?.LastIndexOf(':') ?? -1;
        if (colon <= 0)
        {
            return false;
        }

        var hostPart = text![..colon];
        if (hostPart.StartsWith('['))
        {
            if (!hostPart.EndsWith(']') || hostPart.Length < 3)
            {
                return false;
            }

            hostPart = hostPart[1..^1];
        }
        else if (hostPart.Contains(':'))
        {
            // An IPv6 address needs brackets, or its last group would read as the port.
            return false;
        }

        if (string.IsNullOrWhiteSpace(hostPart) || hostPart.Any(char.IsWhiteSpace)
            || !int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var parsedPort)
            || parsedPort is < 1 or > 65535)
        {
            return false;
        }

        host = hostPart;
        port = parsedPort;
        return true;
    }

    /// <summary>An <c>allowed_hosts</c> entry: a host name or IP address, with or without a port
    /// ("loop.example.com", "loop.example.com:8443", "192.168.1.20", "[fd00::1]:8222").</summary>
    public static bool TryParseHost(string? text, out string host, out int? port)
    {
        host = "";
        port = null;
        text = text?.Trim() ?? "";
        // A bare IPv6 address has colons but no port.
        if (!text.StartsWith('[') && IPAddress.TryParse(text, out var bare) && bare.AddressFamily == AddressFamily.InterNetworkV6)
        {
            host = NormalizeHost(text);
            return true;
        }

        var name = text;
        if (TryParse(text, out var withoutPort, out var parsedPort))
        {
            name = withoutPort;
            port = parsedPort;
        }

        var normalized = NormalizeHost(name);
        if (normalized.Length == 0 || !IsHostName(normalized))
        {
            port = null;
            return false;
        }

        host = normalized;
        return true;
    }

    /// <summary>A host as the Host header and <c>allowed_hosts</c> are compared: lower case, no
    /// trailing dot, an IPv6 address in brackets and in its short form.</summary>
    public static string NormalizeHost(string host)
    {
        var inner = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (IPAddress.TryParse(inner, out var address) && (inner.Contains(':') || inner.Count(c => c == '.') == 3))
        {
            return address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        }

        return host.TrimEnd('.').ToLowerInvariant();
    }

    /// <summary>Whether a normalized host is an IP address rather than a name.</summary>
    public static bool IsIpAddress(string normalizedHost) =>
        normalizedHost.StartsWith('[') && normalizedHost.EndsWith(']')
            ? IPAddress.TryParse(normalizedHost[1..^1], out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6
            : IPAddress.TryParse(normalizedHost, out _) && normalizedHost.Count(c => c == '.') == 3;

    private static bool IsHostName(string host) =>
        IsIpAddress(host) || host.Split('.').All(label => label.Length is > 0 and <= 63 && label.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'));
}
