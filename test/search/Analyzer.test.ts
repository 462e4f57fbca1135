/**
 * Goal: analysis produces the documented terms and positions.
 * Method: fixed inputs covering case, diacritics, special Latin letters, compatibility forms,
 * punctuation, CJK and Indic scripts, stop words (with their positions kept), the term length
 * bound and the per-field switches.
 */
import { describe, expect, it } from "vitest"
import * as Analyzer from "../../src/search/Analyzer.js"

const terms = (text: string, options?: Analyzer.AnalyzerOptions) => Analyzer.make(options).analyze(text).terms

describe("Analyzer", () => {
  it("lowercases and folds diacritics", () => {
    expect(terms("Café NAÏVE Résumé über")).toEqual(["cafe", "naive", "resume", "uber"])
  })

  it("folds Latin letters that do not decompose, and compatibility forms", () => {
    expect(terms("Straße Øre Łódź Æsir ﬁle ＡＢＣ")).toEqual(["strasse", "ore", "lodz", "aesir", "file", "abc"])
  })

  it("splits on anything that is not a letter, digit or mark", () => {
    expect(terms("hello, world! 42 foo_bar e-mail it's")).toEqual(["hello", "world", "42", "foo", "bar", "e", "mail", "it", "s"])
  })

  it("makes every Han and Hiragana character a term, keeps Katakana words and Indic marks", () => {
    expect(terms("東京タワー ひらがな हिन्दी")).toEqual(["東", "京", "タワー", "ひ", "ら", "が", "な", "हिन्दी"])
  })

  it("removes stop words but keeps their positions", () => {
    expect(Analyzer.make({ stopWords: "english" }).analyze("The quick fox of the hill")).toEqual({
      terms: ["quick", "fox", "hill"],
      positions: [1, 2, 5]
    })
  })

  it("has a stop word list per language, each applied to its own language only", () => {
    const samples: Record<Analyzer.Language, [string, Array<string>]> = {
      english: ["The cat is on the mat", ["cat", "mat"]],
      french: ["Le chat est sur la table avec les enfants", ["chat", "table", "enfants"]],
      german: ["Der Hund ist für die Kinder und nicht für mich", ["hund", "kinder"]],
      spanish: ["El perro está en la casa con los niños", ["perro", "casa", "ninos"]],
      italian: ["Il gatto è sulla tavola con i bambini", ["gatto", "tavola", "bambini"]],
      portuguese: ["O cão está na mesa com as crianças", ["cao", "mesa", "criancas"]],
      dutch: ["De hond is in het huis met de kinderen", ["hond", "huis", "kinderen"]],
      swedish: ["Hunden och katten är på bordet", ["hunden", "katten", "bordet"]],
      danish: ["Hunden og katten er på bordet", ["hunden", "katten", "bordet"]],
      norwegian: ["Hunden og katten er på bordet", ["hunden", "katten", "bordet"]],
      finnish: ["Koira ja kissa ovat pöydällä", ["koira", "kissa", "poydalla"]],
      russian: ["Собака и кошка на столе", ["собака", "кошка", "столе"]]
    }
    expect(Object.keys(samples).sort()).toEqual([...Analyzer.languages].sort())
    for (const language of Analyzer.languages) {
      const [text, expected] = samples[language]
      expect(terms(text, { stopWords: language }), language).toEqual(expected)
      // No list removes content words of its own sample, and "none" removes nothing.
      expect(terms(text, { stopWords: "none" }).length, language).toBeGreaterThan(expected.length)
    }
    // A list belongs to its language: German stop words stay in French text.
    expect(terms("die und der", { stopWords: "french" })).toEqual(["die", "und", "der"])
  })

  it("normalizes custom stop words like the text", () => {
    expect(terms("Über alles", { stopWords: ["ÜBER"] })).toEqual(["alles"])
  })

  it("drops over-long tokens, which still take a position", () => {
    const long = "x".repeat(65)
    expect(Analyzer.make().analyze(`a ${long} b`)).toEqual({ terms: ["a", "b"], positions: [0, 2] })
    expect(Analyzer.make({ termLengthMax: 100 }).analyze(`a ${long}`).terms).toEqual(["a", long])
  })

  it("honours the per-field switches", () => {
    expect(terms("Café", { foldDiacritics: false })).toEqual(["café"])
    expect(terms("Café", { lowercase: false })).toEqual(["Cafe"])
  })

  it("tokens() keeps stop words (for prefix and fuzzy words)", () => {
    expect(Analyzer.make({ stopWords: "english" }).tokens("The")).toEqual(["the"])
  })
})
