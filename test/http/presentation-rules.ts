/**
 * The IIIF Presentation API 3.0 rules that can be checked offline, on one document: what the
 * official Presentation validator's JSON schema (IIIF/presentation-validator, schema/iiif_3_0.json)
 * requires of the resources Tessera writes, each rule citing the specification section it comes
 * from (https://iiif.io/api/presentation/3.0/). Returns the problems found, as paths and
 * messages; an empty list is a valid document.
 */

type Json = Record<string, unknown>

const CONTEXT = 'http://iiif.io/api/presentation/3/context.json'

/** Behaviors valid on each resource type (§3.4.1 behavior, table of "valid on"). */
const BEHAVIORS: Record<string, readonly string[]> = {
  Collection: [
    'auto-advance',
    'no-auto-advance',
    'repeat',
    'no-repeat',
    'unordered',
    'individuals',
    'continuous',
    'paged',
    'multi-part',
    'together',
    'no-nav',
  ],
  Manifest: ['auto-advance', 'no-auto-advance', 'repeat', 'no-repeat', 'unordered', 'individuals', 'continuous', 'paged'],
  Canvas: ['auto-advance', 'no-auto-advance', 'facing-pages', 'non-paged'],
}

export function presentationProblems(document: unknown): string[] {
  const problems: string[] = []
  const ids = new Map<string, string>()
  const fail = (path: string, message: string): void => {
    problems.push(`${path}: ${message}`)
  }

  const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

  // §4.1 language maps: an object whose keys are BCP 47 tags or "none", each an array of strings.
  const languageMap = (value: unknown, path: string) => {
    if (!isObject(value) || Object.keys(value).length === 0) return fail(path, 'must be a non-empty language map')
    for (const [lang, strings] of Object.entries(value)) {
      if (!/^([a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*|none)$/.test(lang)) fail(path, `bad language tag ${lang}`)
      if (!Array.isArray(strings) || strings.length === 0 || strings.some((s) => typeof s !== 'string'))
        fail(`${path}.${lang}`, 'must be a non-empty array of strings')
    }
  }

  // §3.2 id: an HTTP(S) URI; §3.2 ids of resources described in full are unique within the document.
  const id = (value: Json, path: string, unique: boolean) => {
    if (typeof value.id !== 'string' || !/^https?:\/\/[^\s]+$/.test(value.id))
      return fail(path, `id must be an http(s) URI, not ${String(value.id)}`)
    try {
      new URL(value.id)
    } catch {
      fail(path, `id ${value.id} is not a URL`)
    }
    if (unique) {
      const seen = ids.get(value.id)
      if (seen !== undefined && seen !== path) fail(path, `id ${value.id} is also ${seen}`)
      ids.set(value.id, path)
    }
  }

  const type = (value: Json, path: string, expected: readonly string[]) => {
    if (!expected.includes(value.type as string)) fail(path, `type must be ${expected.join(' or ')}, not ${String(value.type)}`)
  }

  const positiveInt = (value: unknown) => Number.isSafeInteger(value) && (value as number) > 0

  // §3.1 descriptive and §3.3 linking properties that are arrays of resources with id and type.
  const references = (value: Json, key: string, path: string, extra: (item: Json, at: string) => void = () => {}) => {
    if (value[key] === undefined) return
    const list = value[key]
    if (!Array.isArray(list)) return fail(`${path}.${key}`, 'must be an array')
    for (const [i, item] of list.entries()) {
      const at = `${path}.${key}[${i}]`
      if (!isObject(item)) {
        fail(at, 'must be an object')
        continue
      }
      id(item, at, false)
      if (typeof item.type !== 'string') fail(at, 'must have a type')
      if (item.label !== undefined) languageMap(item.label, `${at}.label`)
      extra(item, at)
    }
  }

  const common = (value: Json, path: string, kind: string) => {
    if (value.label !== undefined) languageMap(value.label, `${path}.label`)
    if (value.summary !== undefined) languageMap(value.summary, `${path}.summary`)
    if (value.metadata !== undefined) {
      // §3.1 metadata: an array of {label, value} language-map pairs.
      if (!Array.isArray(value.metadata)) fail(`${path}.metadata`, 'must be an array')
      else
        for (const [i, pair] of value.metadata.entries()) {
          if (!isObject(pair)) fail(`${path}.metadata[${i}]`, 'must be an object')
          else {
            languageMap(pair.label, `${path}.metadata[${i}].label`)
            languageMap(pair.value, `${path}.metadata[${i}].value`)
          }
        }
    }
    references(value, 'thumbnail', path, (item, at) => {
      // §3.1 thumbnail: content resources; an image SHOULD say its format.
      if (item.type === 'Image' && typeof item.format !== 'string') fail(at, 'an Image thumbnail should have a format')
      if ((item.width === undefined) !== (item.height === undefined)) fail(at, 'width and height come together')
    })
    // §3.3 homepage: MUST have id, type, label; SHOULD have format.
    references(value, 'homepage', path, (item, at) => {
      if (item.label === undefined) fail(at, 'a homepage must have a label')
    })
    references(value, 'seeAlso', path)
    // §3.3 partOf: references to Collections (or other containers).
    references(value, 'partOf', path)
    if (value.behavior !== undefined) {
      const valid = BEHAVIORS[kind] ?? []
      if (!Array.isArray(value.behavior)) fail(`${path}.behavior`, 'must be an array')
      else
        for (const b of value.behavior) if (!valid.includes(b as string)) fail(`${path}.behavior`, `${String(b)} is not valid on a ${kind}`)
    }
  }

  // §5.5 Annotation Page and §5.6 Annotation: painting annotations targeting their Canvas.
  const annotation = (value: unknown, path: string, canvas: string) => {
    if (!isObject(value)) return fail(path, 'must be an object')
    id(value, path, true)
    type(value, path, ['Annotation'])
    if (value.motivation !== 'painting') fail(path, 'an annotation on a Canvas in items must be painting')
    const target = typeof value.target === 'string' ? value.target : undefined
    if (target === undefined || target.split('#')[0] !== canvas) fail(path, `target must be the Canvas ${canvas}`)
    const body = value.body
    if (!isObject(body)) return fail(`${path}.body`, 'must be a content resource')
    id(body, `${path}.body`, false)
    type(body, `${path}.body`, ['Image'])
    if (typeof body.format !== 'string') fail(`${path}.body`, 'should have a format')
    if (!positiveInt(body.width) || !positiveInt(body.height)) fail(`${path}.body`, 'an Image needs a positive width and height')
    references(body, 'service', `${path}.body`, (service, at) => {
      // Image API 3.0 §5: a service reference has id, type ImageService3 and a profile.
      if (service.type !== 'ImageService3') fail(at, 'an Image API 3 service has type ImageService3')
      if (!['level0', 'level1', 'level2'].includes(service.profile as string)) fail(at, 'profile must be level0, level1 or level2')
    })
  }

  // §5.4 Canvas: width and height (positive integers, together), items of AnnotationPages.
  const canvas = (value: unknown, path: string) => {
    if (!isObject(value)) return fail(path, 'must be an object')
    id(value, path, true)
    type(value, path, ['Canvas'])
    common(value, path, 'Canvas')
    if (!positiveInt(value.width) || !positiveInt(value.height)) fail(path, 'a Canvas needs a positive integer width and height')
    if (!Array.isArray(value.items)) return fail(`${path}.items`, 'must be an array of Annotation Pages')
    for (const [i, page] of value.items.entries()) {
      const at = `${path}.items[${i}]`
      if (!isObject(page)) {
        fail(at, 'must be an object')
        continue
      }
      id(page, at, true)
      type(page, at, ['AnnotationPage'])
      if (!Array.isArray(page.items)) fail(`${at}.items`, 'must be an array')
      else for (const [j, a] of page.items.entries()) annotation(a, `${at}.items[${j}]`, value.id as string)
    }
  }

  const root = (value: unknown) => {
    if (!isObject(value)) return fail('$', 'must be an object')
    // §4.6: @context is the Presentation 3 context, or a list ending with it.
    const context = value['@context']
    const last = Array.isArray(context) ? context.at(-1) : context
    if (last !== CONTEXT) fail('$.@context', `must be (or end with) ${CONTEXT}`)
    id(value, '$', true)
    type(value, '$', ['Manifest', 'Collection'])
    if (value.label === undefined) fail('$', 'a Manifest or Collection must have a label')
    common(value, '$', value.type as string)
    if (!Array.isArray(value.items)) return fail('$.items', 'must be an array')
    if (value.type === 'Manifest') {
      // §5.3: a Manifest MUST have at least one Canvas.
      if (value.items.length === 0) fail('$.items', 'a Manifest must have at least one Canvas')
      for (const [i, c] of value.items.entries()) canvas(c, `$.items[${i}]`)
    } else {
      // §5.2: a Collection's items are Collections and Manifests, by reference: id, type, label.
      for (const [i, item] of value.items.entries()) {
        const at = `$.items[${i}]`
        if (!isObject(item)) {
          fail(at, 'must be an object')
          continue
        }
        id(item, at, true)
        type(item, at, ['Manifest', 'Collection'])
        if (item.label === undefined) fail(at, 'a referenced Manifest or Collection must have a label')
        else languageMap(item.label, `${at}.label`)
        references(item, 'thumbnail', at)
      }
    }
  }

  root(document)
  return problems
}
