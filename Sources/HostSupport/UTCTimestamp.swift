import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// UTC timestamps in the two forms cxllab writes, made with the C library: Foundation's date
/// formatters load ICU's time-zone and calendar data, several MiB of resident memory for
/// what is here a fixed format.
public enum UTCTimestamp {
    /// "2026-11-28T18:04:05Z".
    public static func iso8601(_ date: Date) -> String {
        format(date, "%Y-%m-%dT%H:%M:%SZ")
    }

    /// "20261128-180405", for run ids that sort by time.
    public static func compact(_ date: Date) -> String {
        format(date, "%Y%m%d-%H%M%S")
    }

    /// Reads "2026-11-28T18:04:05Z", with or without fractional seconds.
    public static func parse(_ text: String) -> Date? {
        let parts = text.split(whereSeparator: { "-T:Z.".contains($0) }).map(String.init)
        guard text.hasSuffix("Z"), parts.count >= 6, let year = Int32(parts[0]), let month = Int32(parts[1]), let day = Int32(parts[2]),
              let hour = Int32(parts[3]), let minute = Int32(parts[4]), let second = Int32(parts[5]) else { return nil }
        var fields = tm()
        fields.tm_year = year - 1900
        fields.tm_mon = month - 1
        fields.tm_mday = day
        fields.tm_hour = hour
        fields.tm_min = minute
        fields.tm_sec = second
        let seconds = timegm(&fields)
        var fraction = 0.0
        if parts.count > 6, let digits = Double("0." + parts[6]) { fraction = digits }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    static func format(_ date: Date, _ pattern: String) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&seconds, &fields)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, pattern, &fields)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension JSONEncoder.DateEncodingStrategy {
    /// ISO 8601 in UTC, as `.iso8601` writes it, without loading ICU.
    public static var utcISO8601: JSONEncoder.DateEncodingStrategy {
        .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(UTCTimestamp.iso8601(date))
        }
    }
}

extension JSONDecoder.DateDecodingStrategy {
    public static var utcISO8601: JSONDecoder.DateDecodingStrategy {
        .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = UTCTimestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 UTC time: \(text)")
            }
            return date
        }
    }
}
