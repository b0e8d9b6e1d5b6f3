using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Loop.Config;

/// <summary><c>api_addr</c>, where the REST API listens, and the host forms of <c>allowed_hosts</c>.</summary>
public static class ApiAddress
{
    /// <summary>Reads <c>api_addr</c>: an IP address ("127.0.0.1:8222", "[::1]:8222"), <c>localhost</c>
    /// (IPv4 loopback) or <c>*</c> (every IPv4 interface, as 0.0.0.0), then a port from 1 to 65535.
    /// A host name is refused rather than looked up: which of its addresses to listen on is for the
    /// user to say, and a name that resolves elsewhere later would move the API without a word.</summary>
    /// <param name="problem">When false: what is wrong, as the rest of a sentence that begins with the key's name.</param>
    public static bool TryParse(string? text, [NotNullWhen(true)] out IPEndPoint? endpoint, [NotNullWhen(false)] out string? problem)
    {
        endpoint = null;
        if (!TrySplit(text, out var host, out var port))
        {
            problem = "must be host:port with a port from 1 to 65535";
            return false;
        }

        IPAddress? address = host.ToLowerInvariant() switch
        {
            "localhost" => IPAddress.Loopback,
            "*" => IPAddress.Any,
            _ => IsIpAddress(NormalizeHost(host)) ? IPAddress.Parse(host) : null,
        };
        if (address is null)
        {
            problem = $"must be an IP address or localhost, not the host name '{host}' (Loop does not look names up): "
                + $"listen on the machine's address, or on every interface with 0.0.0.0:{port.ToString(CultureInfo.InvariantCulture)}, "
                + "and list the name in allowed_hosts";
            return false;
        }

        endpoint = new IPEndPoint(address, port);
        problem = null;
        return true;
    }

    /// <summary>The endpoint of an <c>api_addr</c> that config loading has accepted.</summary>
    /// <exception cref="FormatException">It was not checked, and is not usable.</exception>
    public static IPEndPoint Parse(string text) =>
        TryParse(text, out var endpoint, out var problem) ? endpoint : throw new FormatException($"api_addr '{text}' {problem}");

    /// <summary>"host:port", an IPv6 host in brackets; the host is not judged.</summary>
    private static bool TrySplit(string? text, out string host, out int port)
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
        if (TrySplit(text, out var withoutPort, out var parsedPort))
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
