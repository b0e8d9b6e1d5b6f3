using System.Globalization;

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
}
